//! The checks themselves: resolve and connect, an HTTP/1.1 exchange over hyper (plain or
//! TLS), a JSON-RPC call, a TLS handshake, a PostgreSQL `SELECT 1` and a Redis `PING`.
//! Each returns `Ok(())` or the reason it failed, and records what it learned on the way
//! (status code, certificate expiry, DNS time, result) in [`Findings`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::Findings;

/// Most bytes of a body read for a regex or a JSON-RPC answer.
pub(crate) const MAX_BODY: usize = 1 << 20;

const USER_AGENT: &str = concat!("dozor/", env!("CARGO_PKG_VERSION"));

/// Checks an `http://` or `https://` URL with a host.
pub(crate) fn parse_http_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("must be an http:// or https:// URL".into()),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => Ok(uri),
        _ => Err("the URL has no host".into()),
    }
}

/// Splits `host:port` (`[::1]:80` for IPv6).
pub(super) fn split_host_port(target: &str) -> Result<(String, u16), String> {
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| format!("{target:?} is not host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{target:?}: bad port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{target:?} has no host"));
    }
    Ok((host.to_owned(), port))
}

/// Resolves `host` (timing it) and connects to the first address that accepts.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    found: &mut Findings,
) -> Result<TcpStream, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let started = Instant::now();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    found.dns_seconds = Some(started.elapsed().as_secs_f64());
    let mut last = format!("cannot resolve {host}: no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

/// A TLS handshake as `name`; records the earliest expiry of the chain.
pub(crate) async fn tls_handshake(
    tcp: TcpStream,
    name: &str,
    config: &Arc<ClientConfig>,
    found: &mut Findings,
) -> Result<TlsStream<TcpStream>, String> {
    let server_name = ServerName::try_from(name.to_owned())
        .map_err(|e| format!("bad TLS server name {name:?}: {e}"))?;
    let stream = TlsConnector::from(Arc::clone(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    found.cert_expiry = super::tls::earliest_expiry(stream.get_ref().1.peer_certificates());
    Ok(stream)
}

/// One HTTP request of a probe or a scrape.
pub(crate) struct HttpRequest<'a> {
    /// `http(s)://host[:port]/path?query`.
    pub url: &'a str,
    /// A JSON body to POST; `None` for a GET.
    pub body: Option<Vec<u8>>,
    /// Another method than POST (with a body) or GET (without).
    pub method: Option<&'a str>,
    /// Extra headers.
    pub headers: &'a [(String, String)],
    /// `Authorization: Bearer …`.
    pub bearer: Option<&'a str>,
    /// `Authorization: Basic …` from a user and a password (ignored with `bearer`).
    pub basic: Option<(&'a str, &'a str)>,
    /// The `Accept` header.
    pub accept: &'a str,
    /// The TLS configuration for `https://`.
    pub tls: Option<&'a Arc<ClientConfig>>,
    /// Verify and send this name instead of the URL's host.
    pub server_name: Option<&'a str>,
    /// Read up to this many bytes of the body (a longer body is an error); 0 drops it.
    pub max_body: usize,
}

/// What came back.
pub(crate) struct HttpResponse {
    pub status: u16,
    /// The `Content-Type` header, if it is text.
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// Sends the request (no redirects followed); returns the status and the body read.
pub(crate) async fn http(
    req: HttpRequest<'_>,
    found: &mut Findings,
) -> Result<HttpResponse, String> {
    let uri = parse_http_url(req.url)?;
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().unwrap_or_default().to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let host_header = match uri.port_u16() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let method = match req.method {
        Some(m) => Method::from_bytes(m.as_bytes()).map_err(|_| format!("bad method {m:?}"))?,
        None if req.body.is_some() => Method::POST,
        None => Method::GET,
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host_header)
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::ACCEPT, req.accept)
        .header(header::CONNECTION, "close");
    let authorization = match (req.bearer, req.basic) {
        (Some(token), _) => Some(format!("Bearer {token}")),
        (None, Some((user, password))) => {
            use base64::Engine as _;
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            Some(format!("Basic {pair}"))
        }
        (None, None) => None,
    };
    if let Some(a) = authorization {
        let mut value = HeaderValue::from_str(&a)
            .map_err(|_| "the credentials are not a valid header value".to_owned())?;
        value.set_sensitive(true);
        builder = builder.header(header::AUTHORIZATION, value);
    }
    if req.body.is_some()
        && !req
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    for (k, v) in req.headers {
        let name = header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("bad header name {k:?}"))?;
        let mut value =
            HeaderValue::from_str(v).map_err(|_| format!("bad value of header {k:?}"))?;
        value.set_sensitive(true);
        builder = builder.header(name, value);
    }
    let request = builder
        .body(Full::new(Bytes::from(req.body.unwrap_or_default())))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let tcp = connect(&host, port, found).await?;
    if https {
        let config = req
            .tls
            .ok_or("BUG: https request without TLS configuration")?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = req.server_name.unwrap_or(bare);
        let tls = tls_handshake(tcp, name, config, found).await?;
        exchange(TokioIo::new(tls), request, req.max_body, found).await
    } else {
        exchange(TokioIo::new(tcp), request, req.max_body, found).await
    }
}

async fn exchange<I>(
    io: I,
    request: Request<Full<Bytes>>,
    max_body: usize,
    found: &mut Findings,
) -> Result<HttpResponse, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let conn = tokio::spawn(conn);
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP request failed: {e}"))?;
        let status = response.status().as_u16();
        found.status_code = Some(status);
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = if max_body == 0 {
            Bytes::new()
        } else {
            Limited::new(response.into_body(), max_body)
                .collect()
                .await
                .map_err(|e| format!("cannot read the body: {e}"))?
                .to_bytes()
        };
        Ok(HttpResponse {
            status,
            content_type,
            body,
        })
    }
    .await;
    conn.abort();
    result
}

/// One JSON-RPC 2.0 call of a probe.
pub(super) struct JsonRpcCall<'a> {
    pub url: &'a str,
    pub method: &'a str,
    pub params: serde_json::Value,
    /// The result that counts as success; any when `None`.
    pub expected: Option<&'a serde_json::Value>,
    pub bearer: Option<&'a str>,
    pub tls: Option<&'a Arc<ClientConfig>>,
    pub server_name: Option<&'a str>,
}

/// POSTs `{"jsonrpc":"2.0","id":1,"method":…,"params":…}`; succeeds on a 2xx answer with a
/// `result` and no `error` (and the expected result, if one is given).
pub(super) async fn jsonrpc(call: JsonRpcCall<'_>, found: &mut Findings) -> Result<(), String> {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": call.method,
        "params": call.params,
    });
    let request = HttpRequest {
        basic: None,
        method: None,
        headers: &[],
        url: call.url,
        body: Some(body.to_string().into_bytes()),
        bearer: call.bearer,
        accept: "application/json",
        tls: call.tls,
        server_name: call.server_name,
        max_body: MAX_BODY,
    };
    let HttpResponse {
        status,
        body: bytes,
        ..
    } = http(request, found).await?;
    if !(200..300).contains(&status) {
        return Err(format!("unexpected HTTP status {status}"));
    }
    let answer: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("the answer is not JSON: {e}"))?;
    if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
        let message = error
            .get("message")
            .and_then(serde_json::Value::as_str)
            .map_or_else(|| error.to_string(), str::to_owned);
        return Err(format!("JSON-RPC error: {message}"));
    }
    let result = answer
        .get("result")
        .cloned()
        .ok_or("the answer has neither result nor error")?;
    found.result = Some(result.clone());
    match call.expected {
        Some(expected) if *expected != result => {
            Err(format!("result {result}, expected {expected}"))
        }
        _ => Ok(()),
    }
}

/// Connects with a short-lived connection and runs `SELECT 1`.
pub(super) async fn postgres(url: &str, password: Option<&str>) -> Result<(), String> {
    use sqlx::{ConnectOptions, Connection};
    let mut options: sqlx::postgres::PgConnectOptions = url
        .parse()
        .map_err(|e| format!("bad PostgreSQL URL: {e}"))?;
    if let Some(p) = password {
        options = options.password(p);
    }
    let options = options
        .application_name("dozor-probe")
        .disable_statement_logging();
    let mut conn = sqlx::postgres::PgConnection::connect_with(&options)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("SELECT 1 failed: {e}"))?;
    let _ = conn.close().await;
    if one == 1 {
        Ok(())
    } else {
        Err(format!("SELECT 1 returned {one}"))
    }
}

/// `AUTH` (when a password is given) and `PING`, expecting `+PONG`.
///
/// Hand-written rather than through the `redis` crate: a ping is two RESP lines each way,
/// and the crate would bring a large dependency tree for them.
pub(super) async fn redis(tcp: TcpStream, password: Option<&str>) -> Result<(), String> {
    let mut conn = BufReader::new(tcp);
    if let Some(pw) = password {
        let auth = format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{pw}\r\n", pw.len());
        send(&mut conn, auth.as_bytes()).await?;
        let line = read_line(&mut conn).await?;
        if line != "+OK" {
            return Err(format!("AUTH refused: {}", line.trim_start_matches('-')));
        }
    }
    send(&mut conn, b"*1\r\n$4\r\nPING\r\n").await?;
    match read_line(&mut conn).await?.as_str() {
        "+PONG" => Ok(()),
        l if l.starts_with('-') => Err(format!("PING refused: {}", &l[1..])),
        l => Err(format!("unexpected answer to PING: {l:?}")),
    }
}

async fn send(conn: &mut BufReader<TcpStream>, bytes: &[u8]) -> Result<(), String> {
    conn.get_mut()
        .write_all(bytes)
        .await
        .map_err(|e| format!("cannot send: {e}"))
}

/// One RESP line without its CRLF, at most 512 bytes.
async fn read_line(conn: &mut BufReader<TcpStream>) -> Result<String, String> {
    let mut line = Vec::new();
    conn.take(512)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    if line.is_empty() {
        return Err("the server closed the connection".into());
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_splits_names_and_ipv6() {
        assert_eq!(split_host_port("db:5432").unwrap(), ("db".into(), 5432));
        assert_eq!(split_host_port("[::1]:6379").unwrap(), ("::1".into(), 6379));
        assert!(split_host_port("db").is_err());
        assert!(split_host_port("db:99999").is_err());
        assert!(split_host_port(":80").is_err());
    }

    #[test]
    fn only_http_urls_with_hosts_are_probed() {
        assert!(parse_http_url("https://rpc.example:8899/").is_ok());
        assert!(parse_http_url("ftp://x/").is_err());
        assert!(parse_http_url("/path").is_err());
    }
}
