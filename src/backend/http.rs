//! Plain HTTP(S) GETs to a server outside the cluster: an InfluxDB of the user's own
//! (`KOVENANT_INFLUXDB_URL`). TLS trusts the system's roots, or the file `SSL_CERT_FILE` names.
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How long one request may take, connection and TLS included.
const TIMEOUT: Duration = Duration::from_secs(20);

/// GET `base` + `path_and_query` with `headers`: the status and the body, or why there is none.
/// Errors name the URL without its query (which may hold a query text, never a credential).
pub async fn get(
    base: &url::Url,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    let origin = base.origin().ascii_serialization();
    let path = path_and_query.split('?').next().unwrap_or_default();
    let shown = format!("{origin}{path}");
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("{shown}: no trusted certificates to check it with: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, http_body_util::Empty<hyper::body::Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let uri: http::Uri = format!("{origin}{path_and_query}")
        .parse()
        .map_err(|e| format!("{shown}: {e}"))?;
    let mut request = http::Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(http_body_util::Empty::new())
        .map_err(|e| format!("{shown}: {e}"))?;
    let work = async {
        let response = client
            .request(request)
            .await
            // hyper's own words ("client error (Connect)") say little; the cause ("Connection
            // refused", "invalid peer certificate: UnknownIssuer") says it.
            .map_err(|e| format!("{shown}: {}", super::kube::chain(&e)))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{shown}: reading the answer: {e}"))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    match tokio::time::timeout(TIMEOUT, work).await {
        Ok(out) => out,
        Err(_) => Err(format!("{shown}: no answer within {}s", TIMEOUT.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_named_with_its_cause() {
        // A port nothing listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let err = get(&base, "/query?q=SELECT", &[]).await.unwrap_err();
        assert!(
            err.starts_with(&format!("http://127.0.0.1:{port}/query: ")),
            "{err}"
        );
        assert!(err.contains("Connection refused"), "{err}");
        assert!(!err.contains("SELECT"), "{err}");
    }
}
