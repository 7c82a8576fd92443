//! `--healthz-port PORT [--healthz-ip IP]` for the long-running modes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use crate::error::Error;

#[derive(clap::Args, Debug, Clone)]
pub struct HealthArgs {
    /// Serve /healthz, /readyz and /metrics (Prometheus) on this TCP port,
    /// inside the namespace (0: off, as flanneld's default).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub healthz_port: u16,
    /// The address those endpoints listen on.
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub healthz_ip: IpAddr,
}

impl HealthArgs {
    /// The bound listener, when the endpoints are on.
    pub fn listener(&self) -> Result<Option<TcpListener>, Error> {
        if self.healthz_port == 0 {
            return Ok(None);
        }
        let addr = SocketAddr::new(self.healthz_ip, self.healthz_port);
        TcpListener::bind(addr).map(Some).map_err(Error::io(format!("--healthz-port {addr}")))
    }
}
