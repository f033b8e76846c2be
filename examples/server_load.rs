//! Load generator for `rights-server`: use-licence requests from many
//! concurrent clients, beside an axum hello-world and the RSA-2048 public
//! operation rate measured in the same process, so the figures compare.
//!
//! `cargo run --example server_load -- URL[,URL...] OUTBOX_DIR [CONCURRENCY] [SECONDS]`
//! (the server must run without SMTP so that codes land in OUTBOX_DIR).
//! With several URLs (replicas of one server on one database) the clients
//! are spread over them in turn; setup goes through the first.

#[path = "support/signup.rs"]
mod signup;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

async fn load<F, Fut>(concurrency: usize, secs: u64, one: F) -> (f64, Duration, Duration, usize)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let one = Arc::new(one);
    let end = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..concurrency {
        let one = one.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0usize;
            while Instant::now() < end {
                let t = Instant::now();
                if !one(client).await {
                    failed += 1;
                }
                lat.push(t.elapsed());
            }
            (lat, failed)
        }));
    }
    let mut all = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await.unwrap();
        all.extend(l);
        failed += f;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (all.len() as f64 / elapsed, pct(0.50), pct(0.99), failed)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let urls: Vec<String> = args
        .get(1)
        .expect("usage: server_load URL[,URL...] OUTBOX [CONCURRENCY] [SECONDS]")
        .split(',')
        .map(str::to_string)
        .collect();
    let url = urls[0].clone();
    let outbox = PathBuf::from(args.get(2).expect("outbox dir"));
    let concurrency: usize = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(64);
    let secs: u64 = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(10);
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();

    // Sign up, register one protected file.
    let email = format!(
        "bench-{}@example.com",
        hex::encode(rightsfs::crypto::random_array::<4>())
    );
    let (token, device) = signup::sign_up(&http, &url, &outbox, &email).await;
    let (pl, id, cek) = signup::owner_only_licence(&http, &url, &email, &device, 7).await;
    let r = http
        .post(format!("{url}/v1/content"))
        .bearer_auth(&token)
        .json(&json!({"publishing_licence": pl}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    // Licences.
    let lic_urls: Vec<String> = urls
        .iter()
        .map(|u| format!("{u}/v1/content/{}/licence", id.to_hex()))
        .collect();
    let (h, t) = (http.clone(), token.clone());
    let lic = load(concurrency, secs, move |client| {
        let (h, t, u) = (h.clone(), t.clone(), lic_urls[client % lic_urls.len()].clone());
        async move {
            match h.post(&u).bearer_auth(&t).json(&json!({})).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;

    // An axum hello-world in this process, loaded the same way.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hello_url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
        axum::serve(listener, app).await.unwrap();
    });
    let h = http.clone();
    let hello = load(concurrency, secs, move |_| {
        let (h, u) = (h.clone(), hello_url.clone());
        async move {
            match h.get(&u).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;

    // RSA-2048 OAEP public operations on one core.
    let public = device.public();
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_secs(2) {
        public.wrap_key(&cek).unwrap();
        n += 1;
    }
    let rsa = f64::from(n) / start.elapsed().as_secs_f64();

    // Ed25519 signatures (each licence is signed) on one core.
    let signing = rightsfs::crypto::ServerSigningKey::generate();
    let msg = [7u8; 400];
    let start = Instant::now();
    let mut m = 0u32;
    while start.elapsed() < Duration::from_secs(1) {
        std::hint::black_box(signing.sign(&msg));
        m += 1;
    }
    let ed = f64::from(m) / start.elapsed().as_secs_f64();

    println!(
        "concurrency {concurrency}, {secs} s per measurement, {} server URL(s)",
        urls.len()
    );
    for (name, (rate, p50, p99, failed)) in [("licences", lic), ("axum hello-world", hello)] {
        println!(
            "{name:<18} {rate:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  failed {failed}",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
    println!("{:<18} {rsa:>9.0} ops/s (one core)", "RSA-2048 public op");
    println!("{:<18} {ed:>9.0} ops/s (one core)", "Ed25519 signature");
}
