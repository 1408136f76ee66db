//! NVIDIA GPUs through NVML (`nvml-wrapper`, which opens `libnvidia-ml` when asked, so a
//! machine without it gets an error to record, not a failed start).

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};

use super::{GpuDevice, GpuSample, GpuSource, GpuSystem};

/// Every GPU NVML sees.
pub struct NvmlSource {
    nvml: Nvml,
    count: u32,
}

impl NvmlSource {
    /// Opens NVML; the error says why there is no telemetry ("NVML not found" on a
    /// machine without NVIDIA's driver).
    pub fn open() -> Result<NvmlSource, String> {
        let nvml = Nvml::init().map_err(|e| match e {
            nvml_wrapper::error::NvmlError::LibloadingError(_) => "NVML not found".to_owned(),
            other => format!("NVML: {other}"),
        })?;
        let count = nvml.device_count().map_err(|e| format!("NVML: {e}"))?;
        if count == 0 {
            return Err("NVML found no GPU".to_owned());
        }
        Ok(NvmlSource { nvml, count })
    }
}

impl GpuSource for NvmlSource {
    fn system(&self) -> GpuSystem {
        let devices = (0..self.count)
            .filter_map(|i| {
                let d = self.nvml.device_by_index(i).ok()?;
                Some(GpuDevice {
                    index: i,
                    name: d.name().unwrap_or_else(|_| "unknown".to_owned()),
                    memory_total_mb: d.memory_info().map_or(0.0, |m| m.total as f64 / 1e6),
                })
            })
            .collect();
        let cuda = self.nvml.sys_cuda_driver_version().ok().map(|v| {
            format!(
                "{}.{}",
                nvml_wrapper::cuda_driver_version_major(v),
                nvml_wrapper::cuda_driver_version_minor(v)
            )
        });
        GpuSystem {
            devices,
            driver: self.nvml.sys_driver_version().ok(),
            cuda,
        }
    }

    fn sample(&mut self) -> Vec<GpuSample> {
        (0..self.count)
            .filter_map(|i| {
                let d = self.nvml.device_by_index(i).ok()?;
                Some(GpuSample {
                    offset_ms: 0.0,
                    gpu: i,
                    util_pct: d.utilization_rates().ok().map(|u| f64::from(u.gpu)),
                    memory_used_mb: d.memory_info().ok().map(|m| m.used as f64 / 1e6),
                    power_w: d.power_usage().ok().map(|mw| f64::from(mw) / 1e3),
                    energy_j: d.total_energy_consumption().ok().map(|mj| mj as f64 / 1e3),
                    temp_c: d.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
                    sm_clock_mhz: d.clock_info(Clock::SM).ok(),
                    throttle: d
                        .current_throttle_reasons()
                        .map(|r| {
                            r.iter_names()
                                .map(|(name, _)| name.to_ascii_lowercase())
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    fn simulated(&self) -> bool {
        false
    }
}
