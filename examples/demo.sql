-- The main job: every kind of function of the udfs bundle and the table functions of the udtfs
-- bundle, each loaded from its cdylib.
SELECT url_host('https://User@Example.COM:8080/a?b=1') AS host,
       url_host('//cdn.example.net/app.js') AS scheme_relative,
       url_host('mailto:someone@example.com') AS no_host;

SELECT geo_mean(growth) AS mean_growth
FROM (VALUES (1.10), (0.95), (1.30), (1.02)) AS t(growth);

SELECT user_id, ts, sessionize(ts, 1800) OVER (PARTITION BY user_id ORDER BY ts) AS session
FROM (VALUES ('ana', 0), ('ana', 600), ('ana', 4000), ('bo', 100), ('bo', 9000)) AS clicks(user_id, ts)
ORDER BY user_id, ts;

SELECT * FROM url_query_params('https://shop.example/search?q=data+fusion&page=2&sort=price%20asc');

SELECT url_parts('https://shop.example:8443/cart?id=7', 'host', 'port', 'path') AS parts,
       url_normalize('HTTP://Shop.Example:80/cart?id=7#top') AS normal,
       url_join('https://api.example/', 'v2', 'items', 42) AS endpoint;

SELECT top_hosts(referrer, 2) AS top, distinct_hosts(referrer) AS hosts
FROM (VALUES ('https://news.example/a'), ('https://www.search.example/?q=x'),
             ('https://news.example/b'), ('http://blog.example/')) AS visits(referrer);

SET udfs.strip_www = true;
SELECT url_host('https://www.search.example/?q=x') AS host_without_www;

SELECT * FROM url_path_segments('https://docs.example/guide/user%20manual/');

-- The Delta bundle, on tables from conformance/data/delta (run from the repository root).
SELECT id FROM delta_scan('conformance/data/delta/simple_table') ORDER BY id;

SELECT count(*) AS rows_at_version_1 FROM delta_scan('conformance/data/delta/simple_table', 1);

SELECT version, operation FROM delta_history('conformance/data/delta/simple_table');

SELECT _change_type, count(*) AS changes
FROM delta_changes('conformance/data/delta/cdf-table', 0)
GROUP BY _change_type ORDER BY _change_type;

-- The planners bundle: SQL types, operators and FROM-clause syntax DataFusion does not plan.
SELECT '{"user": {"name": "ada", "tags": ["x", "y"]}}' -> 'user' ->> 'name' AS name,
       '{"user": {"tags": ["x", "y"]}}' -> 'user' -> 'tags' ->> -1 AS last_tag;

SELECT uuid_text(CAST(x'a0eebc999c0b4ef8bb6d6bb9bd380a11' AS UUID)) AS id,
       arrow_metadata(CAST('{}' AS JSON)) AS json_metadata;

SELECT count(*) AS sampled FROM generate_series(1, 100000) TABLESAMPLE (1 PERCENT) REPEATABLE (7);

SELECT id FROM delta_scan('conformance/data/delta/simple_table', 0) TABLESAMPLE (2 ROWS) REPEATABLE (1) ORDER BY id;

-- What the host loaded, how it trusted each bundle, and what each one registered.
SELECT name, version, state, trust, capabilities, load_time_us FROM df_plugins();

SELECT bundle, kind, count(*) AS objects FROM df_plugin_objects() GROUP BY bundle, kind ORDER BY bundle, kind;
