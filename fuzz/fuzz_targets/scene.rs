//! A scene file of any text: parsed, checked field by field, built into its experiment and
//! checked against the CPU backend's sizes, at full and smoke size, without running. Scenes that
//! name weight files are parsed and checked but not built: the fuzzer's paths would read
//! whatever this machine has.
#![no_main]

use dale::backend::cpu::CpuBackend;
use dale::backend::Backend;
use dale::scene::Scene;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(mut scene) = Scene::parse(text) else {
        return;
    };
    if !scene.weights.is_empty() {
        return;
    }
    let info = CpuBackend::new().info();
    for smoke in [false, true] {
        if smoke {
            scene.smoke();
        }
        if let Ok(experiment) = scene.experiment() {
            let _ = experiment.check_fits(&info);
        }
    }
});
