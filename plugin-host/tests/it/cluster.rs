//! The bundles on a Ballista cluster: a scheduler and two executors on loopback, started as
//! `df-plugin-host scheduler` / `executor` processes and stopped when the test ends.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::prelude::{SessionConfig, SessionContext};
use df_plugin_conformance::slt;
use df_plugin_host::distributed::client::remote_session;
use tempfile::TempDir;

use crate::util::{cli, host, plugin_dir, query_csv, session};

const SLT: &str = "../conformance/slt/cluster/plugins.slt";
/// Every wait here is bounded: a cluster that does not come up fails the test, not CI.
const STARTUP: Duration = Duration::from_secs(120);
const QUERY: Duration = Duration::from_secs(180);

/// A node process, killed when dropped.
struct Node {
    child: Child,
    log: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

struct Cluster {
    nodes: Vec<Node>,
    url: String,
    _work: TempDir,
}

impl Cluster {
    /// A scheduler with the bundles of `scheduler_dir`, and one executor per entry of
    /// `executor_dirs`.
    fn start(scheduler_dir: &Path, executor_dirs: &[&Path]) -> Cluster {
        let work = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut nodes = vec![spawn(
            work.path(),
            "scheduler",
            &[
                "scheduler".into(),
                "--plugin-dir".into(),
                scheduler_dir.display().to_string(),
                "--port".into(),
                port.to_string(),
            ],
        )];
        wait_for_port(port, &nodes[0]);
        for (i, dir) in executor_dirs.iter().enumerate() {
            let (flight, grpc) = (free_port(), free_port());
            let shuffle = work.path().join(format!("shuffle-{i}"));
            std::fs::create_dir_all(&shuffle).expect("shuffle dir");
            let node = spawn(
                work.path(),
                &format!("executor-{i}"),
                &[
                    "executor".into(),
                    "--plugin-dir".into(),
                    dir.display().to_string(),
                    "--scheduler".into(),
                    format!("127.0.0.1:{port}"),
                    "--port".into(),
                    flight.to_string(),
                    "--grpc-port".into(),
                    grpc.to_string(),
                    "--concurrent-tasks".into(),
                    "2".into(),
                    "--work-dir".into(),
                    shuffle.display().to_string(),
                ],
            );
            wait_for_port(flight, &node);
            nodes.push(node);
        }
        Cluster {
            nodes,
            url: format!("df://127.0.0.1:{port}"),
            _work: work,
        }
    }

    /// A client session on this cluster with the bundles of `dir`.
    async fn client(&self, dir: &Path) -> Arc<SessionContext> {
        let ctx = remote_session(&self.url, SessionConfig::new())
            .await
            .expect("connect to the scheduler");
        host(dir)
            .build()
            .unwrap()
            .load()
            .unwrap()
            .register_into(&ctx)
            .unwrap();
        ctx
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {}\n{}", n.log.display(), n.log()))
            .collect()
    }
}

fn spawn(work: &Path, name: &str, args: &[String]) -> Node {
    let log = work.join(format!("{name}.log"));
    let file = std::fs::File::create(&log).expect("log file");
    let child = cli()
        .args(args)
        .env("RUST_LOG", "warn,df_plugin_host=debug")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("spawn df-plugin-host");
    Node { child, log }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Waits until `node` listens on `port` (it loads its bundles first).
fn wait_for_port(port: u16, node: &Node) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < STARTUP,
            "no listener on port {port} after {STARTUP:?}:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn delta_root() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../conformance/data/delta")
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plugin_queries_on_a_cluster_match_one_process() {
    let dir = plugin_dir(&["df-plugin-udfs", "df-plugin-udtfs", "df-plugin-delta"]);
    let slt_file = Path::new(env!("CARGO_MANIFEST_DIR")).join(SLT);
    let root = delta_root();
    let vars = [("DELTA", root.as_str())];

    // One process: the expected results are the single-process results.
    let local = session();
    host(dir.path())
        .build()
        .unwrap()
        .load()
        .unwrap()
        .register_into(&local)
        .unwrap();
    slt::run_file_with_vars(local, &slt_file, &vars)
        .await
        .unwrap_or_else(|e| panic!("one process: {e}"));

    // The same file on a scheduler and two executors that load the same directory.
    let cluster = Cluster::start(dir.path(), &[dir.path(), dir.path()]);
    let client = cluster.client(dir.path()).await;
    let run = slt::run_file_with_vars(client, &slt_file, &vars);
    match tokio::time::timeout(QUERY, run).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("on the cluster: {e}\n{}", cluster.logs()),
        Err(_) => panic!(
            "on the cluster: no result after {QUERY:?}\n{}",
            cluster.logs()
        ),
    }
    // Writes stay in one process, and say so (into a copy, should that ever change).
    let client = cluster.client(dir.path()).await;
    let table = tempfile::tempdir().expect("temp dir");
    slt::copy_dir(
        &Path::new(&root).join("delta-0.8.0-partitioned"),
        table.path(),
    )
    .expect("copy the table");
    let create = format!(
        "CREATE EXTERNAL TABLE demo STORED AS DELTA LOCATION '{}'",
        table.path().display()
    );
    query_csv(&client, &create).await.expect("create");
    let insert = "INSERT INTO demo VALUES (9, '2022', '1', '1')";
    let err = tokio::time::timeout(QUERY, query_csv(&client, insert))
        .await
        .expect("bounded")
        .expect_err("writes are not distributed");
    assert!(
        err.to_string()
            .contains("writing into a table of bundle 'delta' 0.1.0 (the table factory 'DELTA') is not distributed"),
        "{err}"
    );

    // The three-partition Delta scans ran as tasks that each replayed their own partitions.
    let replays: Vec<String> = cluster.nodes[1..]
        .iter()
        .flat_map(|n| replays(&n.log()))
        .collect();
    for p in 0..3 {
        let wanted = format!("partition={p} partitions=3");
        assert!(
            replays.iter().any(|r| r.contains(&wanted)),
            "no task replayed {wanted}:\n{}",
            cluster.logs()
        );
    }
}

/// The executor log lines of replayed scans, without terminal colours.
fn replays(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("replaying the scan"))
        .map(|l| {
            let mut plain = String::new();
            let mut chars = l.chars();
            while let Some(c) = chars.next() {
                if c == '\u{1b}' {
                    chars.by_ref().find(|c| *c == 'm');
                } else {
                    plain.push(c);
                }
            }
            plain
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_executor_without_the_bundle_or_with_another_version_fails_the_query_by_name() {
    let full = plugin_dir(&["df-plugin-udfs", "corpus-upgrade-v2"]);
    let lacking = plugin_dir(&["corpus-upgrade-v1"]);
    let cluster = Cluster::start(full.path(), &[lacking.path()]);
    let client = cluster.client(full.path()).await;

    let missing = "SELECT time_bucket(x, 60) FROM (VALUES (1), (61)) t(x)";
    let err = tokio::time::timeout(QUERY, query_csv(&client, missing))
        .await
        .expect("bounded")
        .expect_err("the executor has no udfs bundle");
    let msg = err.to_string();
    assert!(
        msg.contains("executor") && msg.contains("has no bundle 'udfs'"),
        "{msg}"
    );
    assert!(
        msg.contains("time_bucket") && msg.contains("udfs 0.1.0"),
        "{msg}"
    );

    let other = "SELECT corpus_upgrade_echo(x) FROM (VALUES (1), (2)) t(x)";
    let err = tokio::time::timeout(QUERY, query_csv(&client, other))
        .await
        .expect("bounded")
        .expect_err("the executor has another version");
    let msg = err.to_string();
    assert!(
        msg.contains("executor")
            && msg.contains("has bundle 'corpus-upgrade' 1.0.0")
            && msg.contains("planned with corpus-upgrade 2.0.0"),
        "{msg}"
    );
}
