-- The main job: every kind of function of the udfs bundle, loaded from its cdylib.
SELECT url_host('https://User@Example.COM:8080/a?b=1') AS host,
       url_host('//cdn.example.net/app.js') AS scheme_relative,
       url_host('mailto:someone@example.com') AS no_host;

SELECT geo_mean(growth) AS mean_growth
FROM (VALUES (1.10), (0.95), (1.30), (1.02)) AS t(growth);

SELECT user_id, ts, sessionize(ts, 1800) OVER (PARTITION BY user_id ORDER BY ts) AS session
FROM (VALUES ('ana', 0), ('ana', 600), ('ana', 4000), ('bo', 100), ('bo', 9000)) AS clicks(user_id, ts)
ORDER BY user_id, ts;

SELECT * FROM url_query_params('https://shop.example/search?q=data+fusion&page=2&sort=price%20asc');
