//! The admin port's server: a `std` listener bound at start-up (so a bad address fails
//! `sable run` at once), then axum on a current-thread tokio runtime in thread `sable-admin`,
//! with a once-a-second sampler task for the dashboard. Routing goes through [`Routes`], which
//! puts every route behind its scope's token check.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use tokio::sync::oneshot;

use super::auth::{Identity, Refused, Scope, Tokens};
use super::history::History;
use super::{SAMPLE_PERIOD, actions, dashboard, health, metrics};
use crate::rings::Shared;

/// What the admin routes read: the pipeline's shared state and recorders, the tokens, the
/// dashboard's history and a few facts from the configuration.
pub struct AdminContext {
    /// The pipeline's shared state (`metrics`, `role`, positions, failure).
    pub shared: Arc<Shared>,
    /// The tokens.
    pub tokens: Tokens,
    /// Per-second samples (admin thread only; the lock is never taken by a pipeline thread).
    pub history: Mutex<History>,
    /// Input ring capacity.
    pub input_ring_slots: u64,
    /// The durability policy's name.
    pub durability: String,
    /// Whether a replication port is configured.
    pub replication: bool,
    /// Whether a snapshot follower runs (`snapshot.every_commands > 0`): `POST /admin/snapshot`
    /// needs one.
    pub follower: bool,
    /// The operator desk (market actions, reload, audit); none on a standby.
    pub desk: Option<Arc<super::desk::Desk>>,
    /// On a standby: raised by `POST /admin/promote` (the standby's loop promotes it).
    pub promote: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl AdminContext {
    /// The context of a pipeline.
    pub fn new(
        shared: Arc<Shared>,
        tokens: Tokens,
        input_ring_slots: u64,
        durability: String,
        replication: bool,
    ) -> Self {
        let history = Mutex::new(History::default());
        AdminContext {
            shared,
            tokens,
            history,
            input_ring_slots,
            durability,
            replication,
            follower: true,
            desk: None,
            promote: None,
        }
    }
}

type Ctx = Arc<AdminContext>;

/// The admin routes by scope. Add a route with [`Routes::read`] (GET views) or
/// [`Routes::admin`] (actions: POST, logged with the caller's identity); the scope check runs
/// before the handler, which can take `Extension<Identity>` to know who called.
pub struct Routes {
    read: Router<Ctx>,
    admin: Router<Ctx>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes { read: Router::new(), admin: Router::new() }
    }
}

impl Routes {
    /// A route any token may call.
    pub fn read(mut self, path: &str, route: MethodRouter<Ctx>) -> Self {
        self.read = self.read.route(path, route);
        self
    }

    /// A route only `admin` tokens may call (a `read` token gets 403).
    pub fn admin(mut self, path: &str, route: MethodRouter<Ctx>) -> Self {
        self.admin = self.admin.route(path, route);
        self
    }

    /// The router: each group behind its scope; `/dashboard` (a static page that holds no
    /// data and asks for a token itself) is the one route without one.
    fn into_router(self, ctx: Ctx) -> Router {
        let read = self.read.route_layer(middleware::from_fn_with_state((Arc::clone(&ctx), Scope::Read), require));
        let admin = self.admin.route_layer(middleware::from_fn_with_state((Arc::clone(&ctx), Scope::Admin), require));
        Router::new().route("/dashboard", get(dashboard::page)).merge(read).merge(admin).with_state(ctx)
    }
}

/// Every route sable serves.
fn routes() -> Routes {
    let routes = Routes::default()
        .read("/health/live", get(health::live))
        .read("/health/ready", get(health::ready))
        .read("/metrics", get(metrics::handler))
        .read("/dashboard/data", get(dashboard::data));
    actions::register(routes)
}

async fn require(State((ctx, scope)): State<(Ctx, Scope)>, mut req: Request, next: Next) -> Response {
    let auth = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    match ctx.tokens.check(auth, scope) {
        Ok(identity) => {
            req.extensions_mut().insert::<Identity>(identity);
            next.run(req).await
        }
        Err(Refused::Unauthenticated) => {
            (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "a valid bearer token is needed\n")
                .into_response()
        }
        Err(Refused::Forbidden) => (StatusCode::FORBIDDEN, "this route needs an admin-scope token\n").into_response(),
    }
}

/// The admin port, running.
pub struct AdminServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AdminServer {
    /// Binds `addr` and starts serving on thread `sable-admin`.
    pub fn start(addr: SocketAddr, ctx: AdminContext) -> std::io::Result<AdminServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
        let (tx, rx) = oneshot::channel();
        let ctx = Arc::new(ctx);
        let thread = std::thread::Builder::new().name("sable-admin".into()).spawn(move || {
            runtime.block_on(serve(listener, ctx, rx));
        })?;
        tracing::info!(addr = %bound, "admin port listening");
        Ok(AdminServer { addr: bound, stop: Some(tx), thread: Some(thread) })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and joins the thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the admin thread panicked");
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.halt();
    }
}

async fn serve(listener: TcpListener, ctx: Ctx, stop: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "admin port: cannot use the listener");
            return;
        }
    };
    let sampler = tokio::spawn(sample(Arc::clone(&ctx)));
    let app = routes().into_router(ctx);
    let served = axum::serve(listener, app).with_graceful_shutdown(async {
        let _ = stop.await;
    });
    if let Err(e) = served.await {
        tracing::error!(error = %e, "admin port stopped");
    }
    sampler.abort();
}

/// Once a second: a sample of every recorder into the dashboard's history.
async fn sample(ctx: Ctx) {
    let mut tick = tokio::time::interval(SAMPLE_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let mut history = ctx.history.lock().unwrap_or_else(|p| p.into_inner());
        history.sample(&ctx);
    }
}
