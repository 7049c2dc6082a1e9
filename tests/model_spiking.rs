//! The spiking model (src/models/spiking.rs): connectivity drawn from a seed or read from CSR
//! arrays (checked), and simulation in chunks whose boundaries change nothing, through sparse
//! and dense weights alike, on both backends.

mod common;

use common::{cuba, normal};
use dale::backend::cpu::CpuBackend;
use dale::models::spiking::{simulate, Connectivity, Csr, SpikingParams, Weights, Wiring};

fn csr(c: &Connectivity) -> &Csr {
    match &c.weights {
        Weights::Sparse(csr) => csr,
        Weights::Dense(_) => panic!("seeded wiring is sparse"),
    }
}

/// Every row's targets ascending, distinct and not the row's own neuron; weights by block.
fn well_formed(c: &Connectivity, (w_e, w_i): (f32, f32)) {
    assert_eq!(csr(c).indptr.len(), c.n + 1);
    for j in 0..c.n {
        let (row, w) = csr(c).row(j);
        assert!(row.windows(2).all(|w| w[0] < w[1]), "row {j} not ascending");
        assert!(
            row.iter().all(|k| *k as usize != j && (*k as usize) < c.n),
            "row {j}"
        );
        let want = if j < c.excitatory { w_e } else { w_i };
        assert!(w.iter().all(|v| *v == want), "row {j} weights");
    }
}

#[test]
fn fixed_probability_wiring_has_the_binomial_degree_and_is_the_same_for_a_seed() {
    let (n, p) = (2000, 0.02);
    let c = Connectivity::random(n, 1600, Wiring::Probability(p), (1.62, -9.0), 4);
    well_formed(&c, (1.62, -9.0));
    // nnz ~ Binomial(n (n - 1), p): mean 79,960, sd 280; within 5 sd.
    let mean = (n * (n - 1)) as f64 * p;
    let sd = (mean * (1.0 - p)).sqrt();
    assert!(
        (c.synapses() as f64 - mean).abs() < 5.0 * sd,
        "{} synapses, {mean} expected",
        c.synapses()
    );
    // Each row's out-degree too: Binomial(n - 1, p), mean 40; no row beyond 40 +- 8 sd.
    let row_sd = ((n - 1) as f64 * p * (1.0 - p)).sqrt();
    for j in 0..n {
        let d = csr(&c).row(j).0.len() as f64;
        assert!(
            (d - (n - 1) as f64 * p).abs() < 8.0 * row_sd,
            "row {j}: {d}"
        );
    }
    assert_eq!(
        c,
        Connectivity::random(n, 1600, Wiring::Probability(p), (1.62, -9.0), 4)
    );
    assert_ne!(
        c,
        Connectivity::random(n, 1600, Wiring::Probability(p), (1.62, -9.0), 5)
    );
}

#[test]
fn fixed_in_degree_wiring_gives_every_neuron_its_inputs_from_each_block() {
    let n = 500;
    let wiring = Wiring::InDegree {
        excitatory: 32,
        inhibitory: 8,
    };
    let c = Connectivity::random(n, 400, wiring, (1.0, -2.0), 7);
    well_formed(&c, (1.0, -2.0));
    let mut from_e = vec![0; n];
    let mut from_i = vec![0; n];
    for j in 0..n {
        for &k in csr(&c).row(j).0 {
            if j < 400 {
                from_e[k as usize] += 1;
            } else {
                from_i[k as usize] += 1;
            }
        }
    }
    assert!(from_e.iter().all(|d| *d == 32), "{from_e:?}");
    assert!(from_i.iter().all(|d| *d == 8), "{from_i:?}");
}

/// CSR arrays as scipy.sparse may hold them (targets unsorted, a target twice, wide integers)
/// become rows sorted with repeats summed; every inconsistency is refused naming its array.
#[test]
fn csr_arrays_are_read_as_scipy_means_them_or_refused_by_name() {
    // Row 0: targets 2, 0, 2 (2 twice: 0.5 + 0.25); row 1 empty; row 2: target 1.
    let (indptr, indices, data) = ([0i64, 3, 3, 4], [2i64, 0, 2, 1], [0.5f32, 1.0, 0.25, -2.0]);
    let c = Connectivity::from_csr(3, 2, &indptr, &indices, &data).unwrap();
    assert_eq!(
        *csr(&c),
        Csr {
            indptr: vec![0, 2, 2, 3],
            indices: vec![0, 2, 1],
            weights: vec![1.0, 0.75, -2.0],
        }
    );
    assert_eq!(c.synapses(), 3);
    for (indptr, indices, data, array, says) in [
        (
            &[0i64, 3, 3][..],
            &indices[..],
            &data[..],
            "indptr",
            "n + 1 = 4",
        ),
        (
            &indptr[..],
            &indices[..3],
            &data[..],
            "indices",
            "3 indices for 4 values",
        ),
        (
            &[1i64, 3, 3, 4][..],
            &indices[..],
            &data[..],
            "indptr",
            "runs from 1 to 4",
        ),
        (
            &[0i64, 3, 2, 4][..],
            &indices[..],
            &data[..],
            "indptr",
            "decreases at row 1",
        ),
        (
            &indptr[..],
            &[2i64, 0, 3, 1][..],
            &data[..],
            "indices",
            "index 3 at position 2 (row 0); allowed: 0 to 2",
        ),
        (
            &indptr[..],
            &[2i64, 0, 2, -1][..],
            &data[..],
            "indices",
            "index -1 at position 3 (row 2)",
        ),
    ] {
        let e = Connectivity::from_csr(3, 2, indptr, indices, data).unwrap_err();
        assert_eq!(e.array, array, "{e:?}");
        assert!(e.message.contains(says), "{e:?}");
    }
}

/// The same weights delivered densely and sparsely give the same spikes, bit for bit: each
/// target adds the listed rows' weights in list order either way, and adding a dense matrix's
/// zeros changes no sum.
#[test]
fn dense_and_sparse_weights_give_the_same_spikes() {
    let sparse = params(250);
    let n = sparse.connectivity.n;
    let mut w = vec![0.0f32; n * n];
    for j in 0..n {
        for (k, v) in sparse.connectivity.row(j) {
            w[j * n + k as usize] = v;
        }
    }
    let dense = SpikingParams {
        connectivity: Connectivity::dense(n, sparse.connectivity.excitatory, w),
        ..sparse.clone()
    };
    assert_eq!(
        dense.connectivity.synapses(),
        sparse.connectivity.synapses()
    );
    let a = simulate(&mut CpuBackend::new(), &sparse).unwrap();
    let b = simulate(&mut CpuBackend::new(), &dense).unwrap();
    assert!(
        a.spikes.len() > 400,
        "{} spikes: too quiet to compare",
        a.spikes.len()
    );
    assert_eq!(a, b);
    if let Some(ctx) = common::gpu() {
        let gpu = simulate(&mut dale::backend::gpu::GpuBackend::new(ctx), &dense).unwrap();
        assert_eq!(gpu.spikes, b.spikes, "dense delivery on the GPU");
    }
}

/// The CPU backend takes whole networks through a chunk on each thread when there are at least
/// as many networks as threads, and spreads each step over the threads otherwise: both give the
/// same spikes and voltages (two networks on 1 thread, and on 8).
#[test]
fn the_cpu_backend_gives_the_same_spikes_network_by_network_and_step_by_step() {
    let p = params(300);
    let on = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| simulate(&mut CpuBackend::new(), &p).unwrap())
    };
    let (by_network, by_step) = (on(1), on(8));
    assert!(by_network.spikes.len() > 400);
    assert_eq!(by_network, by_step);
}

fn params(record_every: usize) -> SpikingParams {
    let (networks, n) = (2, 400);
    let z = normal(networks * n, 3);
    SpikingParams {
        lif: cuba(networks, n),
        connectivity: Connectivity::random(n, 320, Wiring::Probability(0.05), (1.62, -9.0), 1),
        v0: z
            .iter()
            .map(|x| -60.0 + 10.0 * (0.5 + 0.5 * (x / 2.0).tanh()))
            .collect(),
        steps: 1000,
        record_every,
    }
}

/// Chunk boundaries change nothing: a spike on a chunk's last step is delivered once, before
/// the next chunk's first step, and recorded once.
#[test]
fn chunks_of_any_length_give_the_same_spikes() {
    let one = rayon::scope(|_| simulate(&mut CpuBackend::new(), &params(1000)).unwrap());
    assert!(
        one.spikes.len() > 400,
        "{} spikes: silent",
        one.spikes.len()
    );
    for record_every in [1, 7, 333] {
        let run =
            rayon::scope(|_| simulate(&mut CpuBackend::new(), &params(record_every)).unwrap());
        assert_eq!(run.spikes, one.spikes, "record_every {record_every}");
        assert_eq!(run.v, one.v, "record_every {record_every}");
    }
}

#[test]
fn a_network_on_the_gpu_spikes_as_on_the_cpu_through_the_model() {
    use dale::backend::gpu::GpuBackend;
    let Some(ctx) = common::gpu() else { return };
    let p = params(64);
    let cpu = rayon::scope(|_| simulate(&mut CpuBackend::new(), &p).unwrap());
    let gpu = simulate(&mut GpuBackend::new(ctx), &p).unwrap();
    assert_eq!(gpu.spikes, cpu.spikes);
}

#[test]
fn cuba_scenes_refuse_bad_values_naming_the_field() {
    use dale::scene::Scene;
    let good = std::fs::read_to_string("scenes/cuba.json").unwrap();
    assert!(Scene::parse(&good).is_ok());
    for (from, to, path, says) in [
        (
            r#""reset": -60.0"#,
            r#""reset": -40.0"#,
            "params.reset",
            "reset < threshold",
        ),
        (
            r#""wiring": {"probability": 0.02}"#,
            r#""wiring": {"probability": 1.5}"#,
            "params.wiring.probability",
            "0 to 1",
        ),
        (
            r#""wiring": {"probability": 0.02}"#,
            r#""wiring": {"in_degree": {"excitatory": 5000, "inhibitory": 10}}"#,
            "params.wiring.in_degree",
            "at most the other neurons",
        ),
        (r#""tau_m": 20.0"#, r#""tau_m": 0.0"#, "params.tau_m", "> 0"),
        (r#""n": 4000"#, r#""n": 0"#, "params.n", "from 1"),
        (
            r#""experiment": "cuba""#,
            r#""experiment": "coba""#,
            "params.experiment",
            "\"cuba\"",
        ),
    ] {
        assert!(good.contains(from), "{from}");
        let err = Scene::parse(&good.replace(from, to))
            .unwrap_err()
            .to_string();
        assert!(err.contains(path) && err.contains(says), "{to}: {err}");
    }
}

/// The full CUBA scene on the CPU backend, two networks from different starts: every check
/// passes, the statistics within the ranges the scene states from Brian2's runs among them.
#[test]
fn cuba_at_full_size_has_the_statistics_brian2_gives() {
    use dale::scene::Scene;
    let text = std::fs::read_to_string("scenes/cuba.json")
        .unwrap()
        .replace(r#""networks": 1"#, r#""networks": 2"#);
    let scene = Scene::parse(&text).unwrap();
    let report = rayon::scope(|_| {
        scene
            .experiment()
            .unwrap()
            .run(&mut CpuBackend::new(), &mut |_| {})
            .unwrap()
    });
    assert_eq!(report.checks.len(), 5, "{:?}", report.checks);
    for (name, passed) in &report.checks {
        assert!(passed, "{name}: {}", report.figures["per_network"]);
    }
}
