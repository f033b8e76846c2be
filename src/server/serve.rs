//! Startup and the listening loop: plain HTTP on loopback only, HTTPS with
//! rustls otherwise; graceful shutdown on SIGTERM and SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use super::app::router;
use super::config::ServeArgs;
use super::keys::ServerKeys;
use super::mail::Mailer;
use super::sent::SentFiles;
use super::state::AppState;
use super::state::DEFAULT_MAX_OFFLINE_DAYS;

/// Runs the server until a termination signal.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let args = args.merge_file()?;
    let listen = args.listen();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(tls_config(c, k)?),
        _ if listen.ip().is_loopback() => None,
        _ => {
            anyhow::bail!("plain HTTP is only allowed on loopback; to listen on {listen} pass --tls-cert and --tls-key")
        }
    };
    super::private_files::private_umask();
    let data_dir = args.data_dir()?;
    let database = args.database(&data_dir);
    let sqlite = (!database.starts_with("postgres://") && !database.starts_with("postgresql://"))
        .then(|| std::path::PathBuf::from(database.strip_prefix("sqlite://").unwrap_or(&database)));
    super::private_files::make_private(&data_dir, sqlite.as_deref())
        .map_err(|e| anyhow::anyhow!("cannot make the server's files private: {e}"))?;
    let keys = ServerKeys::load_or_create(&data_dir)?;
    let store = crate::store::open(&database)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = args.public_url.clone().unwrap_or_else(|| format!("{scheme}://{local}"));
    let host = public_url
        .split("://")
        .nth(1)
        .and_then(|r| r.split([':', '/']).next())
        .filter(|h| h.contains('.'))
        .unwrap_or("localhost.localdomain")
        .to_string();
    let mailer = Mailer::from_args(&args, &data_dir, &host)?;
    let sent = SentFiles::open(
        data_dir.join("sent"),
        args.sent_retention_days.unwrap_or(SentFiles::DEFAULT_RETENTION_DAYS),
        args.sent_max_bytes.unwrap_or(SentFiles::DEFAULT_MAX_BYTES),
    )?;
    let mut state = AppState::new(store.clone(), keys, mailer, public_url, sent);
    state.wraps = match args.wrap_cache.unwrap_or(super::state::DEFAULT_WRAP_CACHE) {
        0 => None,
        n => Some(Arc::new(crate::cache::Shared::new(n))),
    };
    state.signin_backoff = args.signin_backoff.unwrap_or(state.signin_backoff).max(1);
    state.auth_per_minute = args.auth_per_minute.unwrap_or(state.auth_per_minute);
    state.max_offline_days = args.max_offline_days.unwrap_or(DEFAULT_MAX_OFFLINE_DAYS);
    state.device_certificate_lifetime = args
        .device_certificate_lifetime
        .unwrap_or(state.device_certificate_lifetime);
    let limits = state.mail_limits;
    state.mail_limits = super::mail_limits::MailLimits {
        window: args
            .mail_window
            .unwrap_or(limits.window)
            .clamp(1, crate::store::TAKE_HORIZON - 86_400),
        per_sender: args.mails_per_sender.unwrap_or(limits.per_sender),
        per_recipient: args.mails_per_recipient.unwrap_or(limits.per_recipient),
    };
    state.metrics_token = args.metrics_token.as_deref().filter(|t| !t.is_empty()).map(Arc::from);
    if let Some(addr) = args.metrics_listen {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for metrics: {e}"))?;
        let metrics = super::app::metrics_router(state.clone());
        tracing::info!(addr = %l.local_addr()?, "metrics served on their own address");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(l, metrics).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    let app = router(state);
    println!("listening on {scheme}://{local}");
    std::io::stdout().flush()?;
    tracing::info!(%local, data_dir = %data_dir.display(), "server ready");
    match tls {
        None => {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(shutdown_signal())
                .await?;
        }
        Some(cfg) => serve_tls(listener, app, cfg).await?,
    }
    tracing::info!("stopped");
    Ok(())
}

async fn serve_tls(listener: TcpListener, app: axum::Router, cfg: Arc<rustls::ServerConfig>) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
            },
            _ = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let app = app.clone().layer(axum::Extension(ConnectInfo(peer)));
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                tracing::debug!(%peer, "TLS handshake failed");
                return;
            };
            let svc = TowerToHyperService::new(app);
            if let Err(e) = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}

fn tls_config(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()));
    let certs = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{} is not a PEM certificate chain: {e}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| anyhow::anyhow!("{} holds no usable private key: {e}", key.display()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
