//! Entry points for the fuzz targets (`fuzz/`) and for replaying their corpus in the tests:
//! each takes arbitrary bytes and must end — without panicking — whatever they are.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use ec2spot_ec2::Config;
use ec2spot_gob::{Limits, Value, decode_stream};
use ec2spot_rpc::{Reply, ReplyFuture, Server, Service};

/// Decodes `data` as a gob stream.
pub fn gob_decode(data: &[u8]) {
    let _ = decode_stream(data, Limits::default());
}

/// Merges `data` as driver JSON; what is accepted must serialize and merge back unchanged.
pub fn config_json(data: &[u8]) {
    let mut c = Config::default();
    if c.merge_json(data).is_ok() {
        let json = c.to_json();
        let mut back = Config::default();
        back.merge_json(&json).expect("our own JSON merges back");
        assert_eq!(back, c, "round trip");
    }
}

/// A service answering every method of service `S` with the empty struct.
struct Echo;

impl Service for Echo {
    fn has_method(&self, method: &str) -> bool {
        method != "Missing"
    }

    fn call(&self, _method: &str, _arg: Value) -> ReplyFuture {
        Box::pin(async { Reply::void() })
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// Feeds `data` to the net/rpc server as one client connection (written in uneven pieces),
/// and reads what it answers until it closes the connection.
pub fn rpc_connection(data: &[u8]) {
    let data = data.to_vec();
    runtime().block_on(async move {
        let mut server = Server::new();
        server.register("S", Arc::new(Echo));
        let server = Arc::new(server);
        let (mut client, conn) = tokio::io::duplex(1 << 16);
        let serving = tokio::spawn(server.serve_stream(conn));
        let (mut rd, mut wr) = tokio::io::split(&mut client);
        let write = async {
            for (i, chunk) in data.chunks(61).enumerate() {
                if wr.write_all(chunk).await.is_err() {
                    break;
                }
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            let _ = wr.shutdown().await;
        };
        let read = async {
            let mut sink = vec![0u8; 4096];
            while let Ok(n) = rd.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        };
        let _ =
            tokio::time::timeout(Duration::from_secs(5), async { tokio::join!(write, read) }).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), serving).await;
    });
}
