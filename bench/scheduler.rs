//! Scheduler benchmark: overhead on no-op tasks and schedule quality on sleeping tasks.
//! Run: CARGO_TARGET_DIR=/root/.cache/orrery-nodb cargo bench --profile dev --no-default-features --bench scheduler
//! The figures and the DAG constructions are explained in bench/scheduler.md.

use std::time::{Duration, Instant};

use orrery::exec::{CancelToken, Dag, Event, Options, Outcome, Task, execute};

type Shape = fn(usize) -> Vec<Task>;

fn main() {
    println!("## Overhead: 10k no-op tasks (execute only; best and median of 7 runs)\n");
    println!("| DAG | threads | build Dag | execute best | execute median |");
    println!("|---|---|---|---|---|");
    let shapes: [(&str, Shape); 4] = [
        ("independent", |n| (0..n).map(|i| Task::new(format!("t{i}"), [])).collect()),
        ("chain", |n| (0..n).map(|i| Task::new(format!("t{i}"), if i == 0 { vec![] } else { vec![i - 1] })).collect()),
        ("layered 100x100, 3 deps", |n| layered(n / 100, 100, |_, _| 3)),
        ("random (≤3 deps)", |n| random_dag(n, 42, 3, &mut Lcg(9)).0),
    ];
    for (name, shape) in shapes {
        for threads in [1, 2, 4, 8] {
            let tasks = shape(10_000);
            let built = Instant::now();
            let dag = Dag::new(tasks).expect("acyclic");
            let build = built.elapsed();
            let mut times: Vec<Duration> = (0..7).map(|_| run(&dag, threads, &|_| ()).0).collect();
            times.sort();
            println!("| {name} | {threads} | {} | {} | {} |", ms(build), ms(times[0]), ms(times[3]));
        }
    }

    println!("\n## Quality: sleeping tasks where max(critical path, work / threads) is attainable\n");
    let d = Duration::from_millis(10);
    let slept = Instant::now();
    for _ in 0..20 {
        std::thread::sleep(d);
    }
    println!("(the OS alone: 20 sleeps of 10 ms in a row take {}, part of every ratio below)\n", ms(slept.elapsed()));
    println!("| DAG | threads | bound | elapsed | ratio |");
    println!("|---|---|---|---|---|");
    for (threads, layers, per_thread) in [(2, 10, 2), (4, 10, 2), (4, 5, 5), (8, 10, 1), (8, 6, 3)] {
        let width = threads * per_thread;
        let tasks = layered(layers, width, |layer, i| 1 + (layer * 7 + i * 3) % 3);
        let durations = vec![d; tasks.len()];
        report(&format!("layered {layers}x{width}, 10 ms each"), tasks, &durations, threads);
    }
    for threads in [2, 4, 8] {
        let (tasks, durations) = chain_and_filler(20, threads, d);
        report(&format!("chain of 20 + {} fillers listed first, 10 ms", (threads - 1) * 20), tasks, &durations, threads);
    }

    println!("\n## Quality: random DAGs, durations 1–20 ms (ratio to the same lower bound)\n");
    println!("| DAG | threads | hints | bound | elapsed | ratio |");
    println!("|---|---|---|---|---|---|");
    for seed in 1..=4u64 {
        for threads in [2, 4, 8] {
            for hints in [false, true] {
                let mut rng = Lcg(seed * 1000 + threads as u64);
                let (mut tasks, durations) = random_dag(300, seed, 4, &mut rng);
                if hints {
                    tasks = tasks.into_iter().zip(&durations).map(|(t, d)| t.with_weight(*d)).collect();
                }
                let bound = lower_bound(&tasks, &durations, threads);
                let dag = Dag::new(tasks).expect("acyclic");
                let (elapsed, _) = run(&dag, threads, &|task| std::thread::sleep(durations[task]));
                let hint = if hints { "durations" } else { "none (task counts)" };
                println!(
                    "| random 300 (seed {seed}) | {threads} | {hint} | {} | {} | {:.3} |",
                    ms(bound),
                    ms(elapsed),
                    elapsed.as_secs_f64() / bound.as_secs_f64()
                );
            }
        }
    }
}

fn report(name: &str, tasks: Vec<Task>, durations: &[Duration], threads: usize) {
    let bound = lower_bound(&tasks, durations, threads);
    let dag = Dag::new(tasks).expect("acyclic");
    let (elapsed, _) = run(&dag, threads, &|task| std::thread::sleep(durations[task]));
    println!("| {name} | {threads} | {} | {} | {:.3} |", ms(bound), ms(elapsed), elapsed.as_secs_f64() / bound.as_secs_f64());
}

/// Runs the DAG with an event subscriber draining the channel, as the CLI will.
fn run(dag: &Dag, threads: usize, work: &(dyn Fn(usize) + Sync)) -> (Duration, usize) {
    let options = Options { threads, retries: 0, retry_delay: Duration::ZERO, node_timeout: None, fail_fast: false, max_in_flight: None };
    let (tx, rx) = crossbeam_channel::unbounded::<Event>();
    let runner = |task: usize, _: u32, _: &CancelToken| {
        work(task);
        Outcome::Success { rows_affected: None, message: None }
    };
    std::thread::scope(|scope| {
        let subscriber = scope.spawn(move || rx.iter().count());
        let start = Instant::now();
        let report = execute(dag, &options, &runner, &CancelToken::new(), Some(&tx)).expect("a thread pool");
        let elapsed = start.elapsed();
        drop(tx);
        assert!(report.is_success());
        (elapsed, subscriber.join().expect("subscriber"))
    })
}

/// `layers` layers of `width` tasks; each task depends on `fan(layer, i)` tasks of the layer
/// before, at least one, so every task but the last layer's has a child.
fn layered(layers: usize, width: usize, fan: impl Fn(usize, usize) -> usize) -> Vec<Task> {
    let mut tasks = Vec::with_capacity(layers * width);
    for layer in 0..layers {
        for i in 0..width {
            let deps = if layer == 0 {
                vec![]
            } else {
                let base = (layer - 1) * width;
                // Task i of the layer before is always a dependency, so no task is childless.
                (0..fan(layer, i).max(1)).map(|k| base + (i + k * 5) % width).collect()
            };
            tasks.push(Task::new(format!("l{layer}_{i}"), deps));
        }
    }
    tasks
}

/// `(threads - 1) * len` independent tasks listed first, then a chain of `len`: the bound is
/// `len * d` both ways, reached only if the chain never waits behind a filler.
fn chain_and_filler(len: usize, threads: usize, d: Duration) -> (Vec<Task>, Vec<Duration>) {
    let fillers = (threads - 1) * len;
    let mut tasks: Vec<Task> = (0..fillers).map(|i| Task::new(format!("f{i}"), [])).collect();
    for i in 0..len {
        let deps = if i == 0 { vec![] } else { vec![fillers + i - 1] };
        tasks.push(Task::new(format!("c{i}"), deps));
    }
    let durations = vec![d; tasks.len()];
    (tasks, durations)
}

/// Each task depends on up to `max_deps` of the 30 tasks before it; durations 1–20 ms.
fn random_dag(n: usize, seed: u64, max_deps: usize, rng: &mut Lcg) -> (Vec<Task>, Vec<Duration>) {
    let mut local = Lcg(seed);
    let tasks = (0..n)
        .map(|i| {
            let deps = if i == 0 { vec![] } else { (0..local.next() % (max_deps + 1)).map(|_| i - 1 - local.next() % i.min(30)).collect() };
            Task::new(format!("t{i}"), deps)
        })
        .collect();
    let durations = (0..n).map(|_| Duration::from_millis(1 + (rng.next() % 20) as u64)).collect();
    (tasks, durations)
}

/// max(longest path by duration, total work / threads).
fn lower_bound(tasks: &[Task], durations: &[Duration], threads: usize) -> Duration {
    // Tasks only depend on earlier ones here, so one pass in order finds every path's finish.
    let mut finish = vec![Duration::ZERO; tasks.len()];
    for (i, task) in tasks.iter().enumerate() {
        let ready = task.deps.iter().map(|&d| finish[d]).max().unwrap_or_default();
        finish[i] = ready + durations[i];
    }
    let critical = finish.iter().copied().max().unwrap_or_default();
    let work: Duration = durations.iter().sum();
    critical.max(work / threads as u32)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A fixed pseudo-random sequence, so every run benchmarks the same DAGs.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
}
