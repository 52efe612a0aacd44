//! The benchmark's reference ceiling: the smallest actix-web server, answering `/healthz` the
//! way `ticketing` does, with the same worker count. `loadgen` measures both with the same
//! connections, so the ratio shows what the node's own stack costs.

use actix_web::{web, App, HttpResponse, HttpServer};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let server = HttpServer::new(|| {
        App::new().route(
            "/healthz",
            web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({ "status": "ok" })) }),
        )
    })
    .bind("127.0.0.1:0")?;
    let addr = server.addrs()[0];
    println!("listening on http://{addr}");
    server.run().await
}
