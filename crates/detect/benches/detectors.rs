//! Cost per sample of each detector (issue 10: the statistical ones within 1 µs per sample
//! per series here). `cargo bench -p dozor-detect`; criterion prints the time per element.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dozor_detect::Detector;
use std::hint::black_box;

/// A day of minute values: a daily cycle with noise (deterministic).
fn series(n: usize) -> Vec<f64> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            #[allow(clippy::cast_precision_loss)]
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            #[allow(clippy::cast_precision_loss)]
            let phase = (i % 1440) as f64 * std::f64::consts::TAU / 1440.0;
            100.0 + 20.0 * phase.sin() + 5.0 * noise
        })
        .collect()
}

fn detectors(c: &mut Criterion) {
    let xs = series(10_000);
    let mut g = c.benchmark_group("per_sample");
    g.throughput(Throughput::Elements(xs.len() as u64));
    let specs = [
        ("mad_60", dozor_detect::Spec::Mad { window: 60 }),
        ("mad_1000", dozor_detect::Spec::Mad { window: 1000 }),
        ("ewma", dozor_detect::Spec::Ewma { alpha: 0.1 }),
        (
            "holt_winters_1440",
            dozor_detect::Spec::HoltWinters {
                period: 1440,
                alpha: 0.1,
                beta: 0.01,
                gamma: 0.1,
            },
        ),
    ];
    for (name, spec) in specs {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut d = spec.build();
                for &x in &xs {
                    black_box(d.update(x));
                }
            });
        });
    }
    g.bench_function("cusum", |b| {
        b.iter(|| {
            let mut c = dozor_detect::cusum::Cusum::new(0.5, 8.0);
            for &x in &xs {
                black_box(c.update(x));
            }
        });
    });
    g.bench_function("likelihood", |b| {
        b.iter(|| {
            let mut l = dozor_detect::likelihood::Likelihood::new(1000, 10);
            for &x in &xs {
                black_box(l.update(x.abs() / 100.0));
            }
        });
    });
    g.bench_function("ensemble_200", |b| {
        b.iter(|| {
            let mut s =
                dozor_detect::ensemble::Scorer::new(dozor_detect::ensemble::Config::default());
            for &x in &xs {
                black_box(s.update(x));
            }
        });
    });
    g.bench_function("shape_novelty", |b| {
        b.iter(|| {
            let mut d = dozor_detect::novelty::ShapeNovelty::new(Default::default());
            for &x in &xs {
                black_box(d.update(x));
            }
        });
    });
    g.bench_function("autoencoder_16x4", |b| {
        b.iter(|| {
            let mut d = dozor_detect::autoencoder::Autoencoder::new(Default::default());
            for &x in &xs {
                black_box(d.update(x));
            }
        });
    });
    let points: Vec<[f64; 2]> = xs.iter().map(|&x| [x, (x / 10.0).floor()]).collect();
    g.bench_function("iforest_2d_refit_1000", |b| {
        b.iter(|| {
            let mut f = dozor_detect::iforest::StreamingForest::new(2_000, 1_000, 1);
            for p in &points {
                black_box(f.update(p));
            }
        });
    });
    g.finish();

    let lines: Vec<String> = (0..10_000)
        .map(|i| {
            format!(
                "2026-12-07 04:{:02}:{:02} INFO [worker-{}] order {} paid {}.{:02} RUB by user u{}",
                i / 60 % 60,
                i % 60,
                i % 8,
                100_000 + i,
                i % 5000,
                i % 100,
                i % 977
            )
        })
        .collect();
    let mut g = c.benchmark_group("per_line");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("logtemplate_push", |b| {
        b.iter(|| {
            let mut m = dozor_detect::logtemplate::TemplateMiner::new(Default::default());
            for l in &lines {
                black_box(m.push(l));
            }
        });
    });
    g.finish();

    let sim = dozor_detect::fraud::simulator::simulate(7, 500);
    let mut g = c.benchmark_group("per_event");
    g.throughput(Throughput::Elements(sim.events.len() as u64));
    g.sample_size(10);
    g.bench_function("fraud_observe", |b| {
        b.iter(|| {
            let mut d = dozor_detect::fraud::FraudDetector::new(Default::default());
            for e in &sim.events {
                black_box(d.observe(e));
            }
        });
    });
    g.finish();
}

criterion_group!(benches, detectors);
criterion_main!(benches);
