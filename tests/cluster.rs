//! Dataset replay on a real scheduler: Debian's Slurm as a one-node cluster
//! (tools/slurm/local-cluster.sh), an array job of 3 tasks over a split
//! (tools/slurm/submit-replay.sh), one task requeued while it runs, and the merge job's report
//! equal to one process's replay of the same split, every sample in the results exactly once.
//! Without Slurm it says SKIPPED, except under CI, where that is a failure.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SAMPLES: usize = 36;
const TASKS: usize = 3;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn have_slurm() -> bool {
    let found = ["munged", "slurmctld", "slurmd", "sbatch", "scontrol"].iter().all(|c| {
        Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "Slurm is missing under CI (tools/setup.sh installs slurm-wlm and munge)"
        );
        eprintln!("SKIPPED: Slurm not installed (tools/setup.sh installs slurm-wlm and munge)");
    }
    found
}

fn ok(out: Output, what: &str) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed: {text}");
    text
}

/// The cluster in a folder of the test's own, brought down on drop whatever happens.
struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn up(dir: &Path) -> Cluster {
        let cluster = Cluster { dir: dir.to_path_buf() };
        let t = Instant::now();
        ok(cluster.script("up"), "local-cluster.sh up");
        eprintln!("cluster up in {:.1} s", t.elapsed().as_secs_f64());
        // Idempotent: a second `up` finds it running and idle.
        ok(cluster.script("up"), "a second local-cluster.sh up");
        cluster
    }

    fn script(&self, verb: &str) -> Output {
        Command::new("bash")
            .arg(repo().join("tools/slurm/local-cluster.sh"))
            .arg(verb)
            .env("SAFED_SLURM_DIR", &self.dir)
            .env("SAFED_SLURM_WAIT", "60")
            .output()
            .unwrap()
    }

    /// A Slurm command pointed at this cluster.
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.dir.join("slurm.conf"));
        c
    }

    /// `squeue`'s state of one job (None once it has left the queue).
    fn state(&self, job: &str) -> Option<String> {
        let out = self.cmd("squeue").args(["-h", "-j", job, "-o", "%T"]).output().unwrap();
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!s.is_empty()).then_some(s)
    }

    fn pid_of(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(name)).ok().map(|s| s.trim().to_string())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let t = Instant::now();
        let out = self.script("down");
        eprintln!(
            "cluster down in {:.1} s: {}",
            t.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "{what}: not within {} s", limit.as_secs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_array_job_with_a_requeued_task_merges_to_the_report_of_one_run() {
    if !have_slurm() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    common::demo_recordings(&root, SAMPLES);
    let safed = env!("CARGO_BIN_EXE_safed");

    // The reference: one process over the whole split.
    let one = tmp.path().join("one.json");
    ok(
        Command::new(safed)
            .args(["replay", "--speed", "max", "--dataset"])
            .arg(&root)
            .arg("--report")
            .arg(&one)
            .stdout(Stdio::null())
            .output()
            .unwrap(),
        "the one-process replay",
    );

    let cluster = Cluster::up(&tmp.path().join("slurm"));
    let out = tmp.path().join("out");
    // Recorded speed (0.27 s a sample, 12 a task): long enough to requeue a task mid-run.
    let submitted = ok(
        cluster
            .cmd("bash")
            .arg(repo().join("tools/slurm/submit-replay.sh"))
            .arg("--dataset")
            .arg(&root)
            .args(["--tasks", &TASKS.to_string(), "--cpus", "1", "--out"])
            .arg(&out)
            .args(["--safed", safed, "--", "--speed", "1"])
            .output()
            .unwrap(),
        "submit-replay.sh",
    );
    // "array job A (3 tasks), merge job M; report: ...": the word after each "job".
    let words: Vec<&str> = submitted.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let ids: Vec<String> = words.windows(2).filter(|w| w[0] == "job").map(|w| w[1].to_string()).collect();
    let [array, merge] = &ids[..] else { panic!("no job ids in {submitted:?}") };
    let (array, merge) = (array.clone(), merge.clone());

    // Task 1 runs and has written part of its shard: requeue it (as a preemption would).
    let task1 = format!("{array}_1");
    let results1 = out.join("results.1.jsonl");
    wait_for("task 1 writing results", Duration::from_secs(60), || {
        cluster.state(&task1).as_deref() == Some("RUNNING") && lines(&results1).len() >= 2
    });
    let before = lines(&results1).len();
    assert!(before < SAMPLES / TASKS, "task 1 finished ({before} samples) before it could be requeued");
    ok(cluster.cmd("scontrol").args(["requeue", &task1]).output().unwrap(), "scontrol requeue");

    // Everything ends, the merge job last (requeued tasks wait ~10 s: cred_expire).
    wait_for("the merge job", Duration::from_secs(180), || {
        cluster.state(&merge).is_none() && cluster.state(&array).is_none()
    });
    let logs: String = std::fs::read_dir(out.join("logs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(logs.contains("DUE TO JOB REQUEUE") && logs.contains("task 1/3") && logs.contains("start 2"), "{logs}");

    // Every sample exactly once across the shards, and task 1 went on from where it stopped.
    let mut seen = BTreeMap::new();
    for i in 0..TASKS {
        for r in lines(&out.join(format!("results.{i}.jsonl"))) {
            *seen.entry(r["index"].as_u64().unwrap()).or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), SAMPLES, "samples in the results: {seen:?}");
    assert!(seen.values().all(|&n| n == 1), "a sample is in the results more than once: {seen:?}");
    let after = lines(&results1);
    assert!(after.len() > before, "task 1 did not go on after the requeue");

    // The merge job's report equals the one-process replay's.
    let report = out.join("report.json");
    assert!(report.exists(), "no report; merge log: {logs}");
    let parse = |p: &Path| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let (one, merged) = (parse(&one), parse(&report));
    for key in ["samples", "failed", "clip_top1", "clip_top5", "per_class", "confusion"] {
        assert_eq!(one[key], merged[key], "{key} differs between one run and the cluster's merge");
    }
    assert_eq!(merged["samples"], SAMPLES);
    for beside in ["report.confusion.csv", "report.confusion.png"] {
        assert!(out.join(beside).exists(), "{beside} missing");
    }
    let (ctld, slurmd) = (cluster.pid_of("slurmctld.pid"), cluster.pid_of("slurmd.pid"));
    drop(cluster);
    for pid in [ctld, slurmd].into_iter().flatten() {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "process {pid} outlived `down`");
    }
}
