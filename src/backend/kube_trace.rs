//! `-v` for the Kubernetes API: a tower layer under kube's client that traces each call's
//! method, path, status and time. The path holds names and selectors, never a Secret's data.
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::{Layer, Service};

use crate::ui::trace;

#[derive(Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> Layer<S> for TraceLayer {
    type Service = Traced<S>;
    fn layer(&self, inner: S) -> Traced<S> {
        Traced { inner }
    }
}

#[derive(Clone)]
pub struct Traced<S> {
    inner: S,
}

type Boxed<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, R> Service<Request<B>> for Traced<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Boxed<Response<R>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if !trace::enabled() {
            return Box::pin(self.inner.call(req));
        }
        let what = format!(
            "{} {}",
            req.method(),
            req.uri().path_and_query().map_or("/", |p| p.as_str())
        );
        let started = Instant::now();
        let call = self.inner.call(req);
        Box::pin(async move {
            let out = call.await;
            let took = trace::took(started.elapsed());
            match &out {
                Ok(resp) => trace::line(format!("API {what} -> {} in {took}", resp.status())),
                Err(e) => trace::line(format!("API {what} -> failed in {took}: {e}")),
            }
            out
        })
    }
}
