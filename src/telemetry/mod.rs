//! GPU telemetry: a sampler on its own thread (never on the async workers) reads every GPU
//! at a fixed interval (utilization, memory, power, the energy counter, temperature, SM
//! clock, throttle reasons), hands each sample to a sink (`gpu.jsonl`) and keeps it until
//! the trial it belongs to ends, when [`Sampler::trial`] turns the trial's window into
//! energy, mean power and peak memory.
//!
//! Where the samples come from is a [`GpuSource`]: NVIDIA's NVML ([`nvml`], loaded at run
//! time, so a machine without it records telemetry as unavailable and nothing else
//! changes), or the simulator's synthetic GPU (labelled simulated).
//!
//! The server's own account, its Prometheus metrics page, is scraped beside the GPUs
//! ([`server`], read by [`prometheus`]).

pub mod nvml;
pub mod prometheus;
pub mod server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One GPU, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuDevice {
    /// Index as the driver numbers it.
    pub index: u32,
    /// Product name.
    pub name: String,
    /// Memory, MB.
    pub memory_total_mb: f64,
}

/// The GPUs and their software.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSystem {
    /// Every GPU.
    pub devices: Vec<GpuDevice>,
    /// Driver version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// The CUDA version the driver supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda: Option<String>,
}

/// One reading of one GPU: a row of `gpu.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    /// When it was read, ms since the run started (the clock of the call and trial
    /// records' `offset_ms`).
    pub offset_ms: f64,
    /// GPU index.
    pub gpu: u32,
    /// Share of the last sample period a kernel ran, %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub util_pct: Option<f64>,
    /// Memory used, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_mb: Option<f64>,
    /// Power draw, W.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_w: Option<f64>,
    /// The energy counter, J since the driver loaded (Volta and newer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_j: Option<f64>,
    /// Temperature, °C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_c: Option<f64>,
    /// SM clock, MHz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_clock_mhz: Option<u32>,
    /// Why the clocks are held down, when they are (`sw_power_cap`, `hw_slowdown`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle: Vec<String>,
}

/// Where samples come from.
pub trait GpuSource: Send {
    /// The GPUs and their software.
    fn system(&self) -> GpuSystem;
    /// Reads every GPU now; `offset_ms` is filled in by the sampler.
    fn sample(&mut self) -> Vec<GpuSample>;
    /// The readings are the simulator's, not a GPU's.
    fn simulated(&self) -> bool;
}

/// What the manifest says about telemetry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TelemetryInfo {
    /// `recorded`, `unavailable` or `off`.
    pub status: String,
    /// Why it is unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The samples are synthetic, from the simulator.
    #[serde(default)]
    pub simulated: bool,
    /// Sampling interval, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<f64>,
    /// The GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<GpuSystem>,
    /// Samples taken (one per GPU per tick).
    #[serde(default)]
    pub samples: usize,
    /// CPU time the sampler thread used, ms (its own cost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler_cpu_ms: Option<f64>,
    /// The sampler's wall time, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler_wall_ms: Option<f64>,
}

impl TelemetryInfo {
    /// Telemetry switched off.
    pub fn off() -> TelemetryInfo {
        TelemetryInfo {
            status: "off".to_owned(),
            ..TelemetryInfo::default()
        }
    }

    /// No source could be opened, for `reason`.
    pub fn unavailable(reason: String) -> TelemetryInfo {
        TelemetryInfo {
            status: "unavailable".to_owned(),
            reason: Some(reason),
            ..TelemetryInfo::default()
        }
    }

    /// One line for people: `GPU telemetry: unavailable (NVML not found)`.
    pub fn words(&self) -> String {
        match (self.status.as_str(), &self.reason) {
            ("unavailable", Some(r)) => format!("GPU telemetry: unavailable ({r})"),
            ("recorded", _) => {
                let names: Vec<String> = self
                    .system
                    .iter()
                    .flat_map(|s| s.devices.iter().map(|d| d.name.clone()))
                    .collect();
                format!(
                    "GPU telemetry: {}{} every {} ms ({} samples)",
                    if self.simulated { "simulated, " } else { "" },
                    names.join(", "),
                    self.interval_ms.unwrap_or(0.0),
                    self.samples
                )
            }
            (status, _) => format!("GPU telemetry: {status}"),
        }
    }
}

/// A trial's GPU figures, from the samples inside its window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialGpu {
    /// Energy of all GPUs over the trial, J.
    pub energy_j: f64,
    /// From the energy counters (else integrated power).
    pub from_counter: bool,
    /// Mean power of all GPUs together, W.
    pub mean_power_w: f64,
    /// Peak memory used, summed over GPUs, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_mb: Option<f64>,
    /// Samples in the window.
    pub samples: usize,
}

/// Energy of one GPU between `t0` and `t1` (ms) from its samples in time order: the
/// counter's rise when every sample has one, else power integrated by the trapezoid rule;
/// the window's edges interpolated between the samples around them.
pub fn energy(samples: &[&GpuSample], t0: f64, t1: f64) -> Option<(f64, bool)> {
    let counter: Option<Vec<(f64, f64)>> = samples
        .iter()
        .map(|s| s.energy_j.map(|e| (s.offset_ms, e)))
        .collect();
    match counter {
        Some(points) if points.len() >= 2 => Some((at(&points, t1)? - at(&points, t0)?, true)),
        _ => {
            let power: Vec<(f64, f64)> = samples
                .iter()
                .filter_map(|s| s.power_w.map(|p| (s.offset_ms, p)))
                .collect();
            if power.len() < 2 {
                return None;
            }
            // ∫ P dt over [t0, t1], with P linear between samples and held at the ends.
            let mut cuts: Vec<f64> = vec![t0];
            cuts.extend(power.iter().map(|p| p.0).filter(|t| *t > t0 && *t < t1));
            cuts.push(t1);
            let value = |t: f64| at(&power, t.clamp(power[0].0, power[power.len() - 1].0));
            let mut joules = 0.0;
            for w in cuts.windows(2) {
                joules += (value(w[0])? + value(w[1])?) / 2.0 * (w[1] - w[0]) / 1e3;
            }
            Some((joules, false))
        }
    }
}

/// The value at `t` of a piecewise-linear series of (time, value), extrapolated from the
/// nearest segment at its ends.
fn at(points: &[(f64, f64)], t: f64) -> Option<f64> {
    if points.len() < 2 {
        return points.first().map(|p| p.1);
    }
    let i = points
        .windows(2)
        .position(|w| t <= w[1].0)
        .unwrap_or(points.len() - 2);
    let ((ta, a), (tb, b)) = (points[i], points[i + 1]);
    if tb == ta {
        return Some(b);
    }
    Some(a + (b - a) * (t - ta) / (tb - ta))
}

/// What a run needs to sample GPUs: where from, how often, and where each sample goes.
pub struct GpuTelemetry {
    /// The GPUs.
    pub source: Box<dyn GpuSource>,
    /// Time between samples.
    pub interval: Duration,
    /// Called with every sample, on the sampler's thread.
    pub sink: Box<dyn FnMut(&GpuSample) + Send>,
}

/// The samples kept since the last trial ended.
type Kept = Arc<Mutex<Vec<GpuSample>>>;

/// A running sampler.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    kept: Kept,
    handle: std::thread::JoinHandle<(usize, Option<f64>, f64)>,
    interval: Duration,
    system: GpuSystem,
    simulated: bool,
}

/// The CPU time this thread has used, ms (Linux; `None` elsewhere).
fn thread_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // The kernel reports them in USER_HZ, 100 on every Linux harness runs on.
    Some(ticks * 10.0)
}

impl Sampler {
    /// Starts sampling `source` every `interval` on a thread of its own; every sample goes
    /// to `sink` as it is taken. `run_start` is the clock of `offset_ms`.
    pub fn start(
        mut source: Box<dyn GpuSource>,
        interval: Duration,
        run_start: Instant,
        mut sink: Box<dyn FnMut(&GpuSample) + Send>,
    ) -> std::io::Result<Sampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let kept: Kept = Arc::default();
        let system = source.system();
        let simulated = source.simulated();
        let handle = {
            let (stop, kept) = (stop.clone(), kept.clone());
            std::thread::Builder::new()
                .name("gpu-telemetry".to_owned())
                .spawn(move || {
                    let started = Instant::now();
                    let mut taken = 0usize;
                    let mut next = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        let offset_ms = run_start.elapsed().as_secs_f64() * 1e3;
                        let samples = source.sample();
                        for mut s in samples {
                            s.offset_ms = offset_ms;
                            sink(&s);
                            kept.lock().unwrap_or_else(|e| e.into_inner()).push(s);
                            taken += 1;
                        }
                        // Fixed ticks, not fixed sleeps, so the interval does not drift.
                        next += interval;
                        let now = Instant::now();
                        if next > now {
                            std::thread::park_timeout(next - now);
                        } else {
                            next = now;
                        }
                    }
                    (
                        taken,
                        thread_cpu_ms(),
                        started.elapsed().as_secs_f64() * 1e3,
                    )
                })?
        };
        Ok(Sampler {
            stop,
            kept,
            handle,
            interval,
            system,
            simulated,
        })
    }

    /// Every GPU has a sample at or after `t` (ms since the run started), so a window
    /// ending at `t` is interpolated, not extrapolated.
    pub fn covers(&self, t: f64) -> bool {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let mut gpus: Vec<u32> = kept.iter().map(|s| s.gpu).collect();
        gpus.sort_unstable();
        gpus.dedup();
        !gpus.is_empty()
            && gpus
                .iter()
                .all(|g| kept.iter().any(|s| s.gpu == *g && s.offset_ms >= t))
    }

    /// The time between samples.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The GPU figures of the trial that ran from `t0` to `t1` (ms since the run
    /// started), and forgets the samples before `t1` but the last, which the next
    /// window may need to interpolate from (whether or not the GPUs could say their
    /// energy, so nothing piles up).
    pub fn trial(&self, t0: f64, t1: f64) -> Option<TrialGpu> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let mut gpus: Vec<u32> = kept.iter().map(|s| s.gpu).collect();
        gpus.sort_unstable();
        gpus.dedup();
        // Every GPU's energy, or none when one of them cannot say.
        let energies: Option<Vec<(f64, bool)>> = gpus
            .iter()
            .map(|gpu| {
                let of_gpu: Vec<&GpuSample> = kept.iter().filter(|s| s.gpu == *gpu).collect();
                energy(&of_gpu, t0, t1)
            })
            .collect();
        let inside: Vec<&GpuSample> = kept
            .iter()
            .filter(|s| s.offset_ms >= t0 && s.offset_ms <= t1)
            .collect();
        // Memory summed over GPUs, at each tick.
        let mut per_tick: std::collections::BTreeMap<u64, f64> = Default::default();
        for s in &inside {
            if let Some(m) = s.memory_used_mb {
                *per_tick.entry(s.offset_ms.to_bits()).or_default() += m;
            }
        }
        let peak_memory_mb = per_tick.values().copied().reduce(f64::max);
        let out = energies.filter(|_| !gpus.is_empty() && t1 > t0).map(|e| {
            let total: f64 = e.iter().map(|x| x.0).sum();
            TrialGpu {
                energy_j: total,
                from_counter: e.iter().all(|x| x.1),
                mean_power_w: total / ((t1 - t0) / 1e3),
                peak_memory_mb,
                samples: inside.len(),
            }
        });
        // Keep the last sample of each GPU at or before t1, and everything after.
        let last_before: Vec<usize> = gpus
            .iter()
            .filter_map(|g| kept.iter().rposition(|s| s.gpu == *g && s.offset_ms <= t1))
            .collect();
        let mut i = 0;
        kept.retain(|s| {
            let keep = s.offset_ms > t1 || last_before.contains(&i);
            i += 1;
            keep
        });
        out
    }

    /// Stops the thread and says what it cost.
    pub fn finish(self) -> TelemetryInfo {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.thread().unpark();
        let (samples, cpu_ms, wall_ms) = self.handle.join().unwrap_or((0, None, 0.0));
        TelemetryInfo {
            status: "recorded".to_owned(),
            reason: None,
            simulated: self.simulated,
            interval_ms: Some(self.interval.as_secs_f64() * 1e3),
            system: Some(self.system),
            samples,
            sampler_cpu_ms: cpu_ms,
            sampler_wall_ms: Some(wall_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, power: f64, energy: Option<f64>) -> GpuSample {
        GpuSample {
            offset_ms: t,
            gpu: 0,
            util_pct: None,
            memory_used_mb: Some(1000.0 + t),
            power_w: Some(power),
            energy_j: energy,
            temp_c: None,
            sm_clock_mhz: None,
            throttle: Vec::new(),
        }
    }

    #[test]
    fn energy_comes_from_the_counter_or_from_integrated_power() {
        // 100 W for a second, counter rising 10 J every 100 ms.
        let with: Vec<GpuSample> = (0..=10)
            .map(|i| {
                sample(
                    f64::from(i) * 100.0,
                    100.0,
                    Some(5000.0 + f64::from(i) * 10.0),
                )
            })
            .collect();
        let refs: Vec<&GpuSample> = with.iter().collect();
        let (e, counter) = energy(&refs, 150.0, 850.0).unwrap();
        assert!(counter);
        assert!((e - 70.0).abs() < 1e-9, "{e}");
        // Without counters: power ramping 100 → 200 W over a second is 150 J.
        let ramp: Vec<GpuSample> = (0..=10)
            .map(|i| sample(f64::from(i) * 100.0, 100.0 + f64::from(i) * 10.0, None))
            .collect();
        let refs: Vec<&GpuSample> = ramp.iter().collect();
        let (e, counter) = energy(&refs, 0.0, 1000.0).unwrap();
        assert!(!counter);
        assert!((e - 150.0).abs() < 1e-9, "{e}");
        // A window between two samples is interpolated: 250..350 ms of the ramp.
        let (e, _) = energy(&refs, 250.0, 350.0).unwrap();
        assert!((e - 0.1 * 130.0).abs() < 1e-9, "{e}");
    }

    struct Steady {
        joules: f64,
    }

    impl GpuSource for Steady {
        fn system(&self) -> GpuSystem {
            GpuSystem::default()
        }
        fn sample(&mut self) -> Vec<GpuSample> {
            self.joules += 2.0;
            vec![sample(0.0, 200.0, Some(self.joules))]
        }
        fn simulated(&self) -> bool {
            true
        }
    }

    #[test]
    fn the_sampler_runs_on_its_own_thread_and_windows_trials() {
        let start = Instant::now();
        let written = Arc::new(Mutex::new(0usize));
        let sink = {
            let written = written.clone();
            Box::new(move |_: &GpuSample| *written.lock().unwrap() += 1)
        };
        let sampler = Sampler::start(
            Box::new(Steady { joules: 0.0 }),
            Duration::from_millis(10),
            start,
            sink,
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let t1 = start.elapsed().as_secs_f64() * 1e3;
        let trial = sampler.trial(50.0, t1 - 20.0).unwrap();
        // 2 J per 10 ms tick is 200 W, whatever the ticks' jitter.
        assert!(trial.from_counter);
        assert!((trial.mean_power_w - 200.0).abs() < 40.0, "{trial:?}");
        assert!(trial.samples >= 5, "{trial:?}");
        let info = sampler.finish();
        assert_eq!(info.status, "recorded");
        assert_eq!(info.samples, *written.lock().unwrap());
        assert!(info.samples >= 10);
    }
}
