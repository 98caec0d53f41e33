//! How fast the generator fills and encodes events, without Kafka:
//! `cargo run --release -p banking-producer --example generate_rate -- 10000000`.

use std::time::Instant;

use banking_producer::Generator;
use banking_proto::BankingEvent;
use prost::Message;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let mut generator = Generator::new(42, 10_000, 1).expect("valid settings");
    let mut event = BankingEvent::default();
    let mut payload = Vec::with_capacity(256);
    let mut bytes = 0usize;
    let started = Instant::now();
    for _ in 0..n {
        generator.fill(&mut event, 1_790_000_000_000_000);
    }
    let fill = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..n {
        payload.clear();
        event.encode(&mut payload).expect("a Vec grows");
        bytes += payload.len();
    }
    let encode = started.elapsed().as_secs_f64();
    println!(
        "fill: {:.0} ns/event, encode: {:.0} ns/event, {} bytes/event",
        fill * 1e9 / n as f64,
        encode * 1e9 / n as f64,
        bytes as u64 / n
    );
}
