use criterion::{Criterion, criterion_group, criterion_main};
fn stub(_c: &mut Criterion) {}
criterion_group!(benches, stub);
criterion_main!(benches);
