//! Cost of `Identity::generate` for every key type.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rpcplugin_certs::{Identity, KeyType};

fn generate(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate");
    for key_type in KeyType::ALL {
        if key_type.is_rsa() {
            // RSA generation takes tens of milliseconds to seconds and varies
            // widely (prime search); fewer samples keep the run short.
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(if key_type == KeyType::Rsa4096 {
                20
            } else {
                8
            }));
        } else {
            group.sample_size(50);
            group.measurement_time(Duration::from_secs(3));
        }
        group.bench_function(key_type.name(), |b| {
            b.iter(|| Identity::generate(black_box(key_type)));
        });
    }
    group.finish();
}

criterion_group!(benches, generate);
criterion_main!(benches);
