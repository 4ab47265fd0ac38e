//! The reference for `benches/server.sh`: a plain tokio echo server as a Rust
//! user writes it in 30 lines (`#[tokio::main]`, a task per connection,
//! `BufReader::read_until`, `write_all`). It answers `Echo: <line>` in line
//! framing, like `reqresp server`, and prints `listening on ADDR`.
//! No limits, no timeouts: that is the point of the comparison.
//!
//! Run: `cargo run --release --example tokio_echo -- 127.0.0.1:0`
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (socket, _) = listener.accept().await?;
        tokio::spawn(async move {
            let (reader, mut writer) = socket.into_split();
            let mut reader = BufReader::new(reader);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let mut answer = b"Echo: ".to_vec();
                answer.extend_from_slice(&line);
                if writer.write_all(&answer).await.is_err() {
                    return;
                }
            }
        });
    }
}
