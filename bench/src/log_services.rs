//! The line templates of the log corpus ([`crate::log_corpus`]): the services of a web shop
//! and its neighbours — `shop-api` (access lines, cache and SQL debug lines, Kotlin stack
//! traces), `checkout` (orders, promo codes, delivery slots, Go panics), `payments`
//! (authorisations, captures, refunds, OFD receipts, declines), two MES lines (station
//! cycles, OPC UA reads, PLC faults, quality checks), `crm` (customers, leads, tickets, 1C
//! sync) and `rabbitmq` (connections, queues, alarms, channel errors) — plus the Loghub
//! lines with their digits varied, mixed by [`SERVICES`]' weights from one seeded random
//! source.

use std::fmt::Write as _;

use crate::log_corpus::{Entry, LoghubTemplates, RARE_NEEDLE, Value};

/// Which service a line comes from, with its weight in the mix (‰) and hosts.
pub(crate) const SERVICES: [(&str, u32, &[&str]); 8] = [
    (
        "shop-api",
        300,
        &["shop-api-1", "shop-api-2", "shop-api-3", "shop-api-4"],
    ),
    ("checkout", 80, &["checkout-1", "checkout-2"]),
    ("payments", 70, &["payments-1", "payments-2"]),
    ("mes-line-1", 70, &["mes-l1-gw", "mes-l1-scada"]),
    ("mes-line-2", 60, &["mes-l2-gw", "mes-l2-scada"]),
    ("crm", 70, &["crm-1", "crm-2"]),
    ("rabbitmq", 100, &["rabbit-1", "rabbit-2", "rabbit-3"]),
    ("loghub", 250, &[]),
];

/// Hosts of the Loghub-style services.
const LOGHUB_HOSTS: [&str; 3] = ["node-a", "node-b", "node-c"];

/// The line generator: a seeded random source and the templates.
pub(crate) struct Generator {
    rng: fastrand::Rng,
    pub(crate) loghub: LoghubTemplates,
}

const STORE_PATHS: [&str; 8] = [
    "/api/v1/products/{sku}",
    "/api/v1/products/{sku}/reviews",
    "/api/v1/cart",
    "/api/v1/cart/items",
    "/api/v1/search",
    "/api/v1/orders/{order}",
    "/api/v1/users/{user}/profile",
    "/api/v1/catalog/categories/{cat}",
];
const USER_AGENTS: [&str; 5] = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/119.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 Chrome/119.0 Mobile",
    "okhttp/4.12.0",
    "ShopApp/3.14.2 (Android 13)",
];
const SEARCH_TERMS: [&str; 8] = [
    "зимние шины",
    "iphone 15 чехол",
    "кофемашина",
    "детское автокресло",
    "ноутбук 16gb",
    "пылесос робот",
    "наушники беспроводные",
    "масло 5w-30",
];
const PROVIDERS: [&str; 4] = ["sberpay", "tinkoff", "yookassa", "sbp"];
const DECLINES: [(&str, u32); 4] = [
    ("insufficient_funds", 51),
    ("do_not_honor", 5),
    ("expired_card", 54),
    ("suspected_fraud", 59),
];
const PROMO: [&str; 4] = ["WINTER25", "BLACKFRIDAY", "WELCOME10", "FREESHIP"];
const DEFECTS: [&str; 4] = [
    "scratch",
    "misalignment",
    "missing_screw",
    "color_deviation",
];
const QUEUES: [&str; 5] = [
    "orders.created",
    "payments.events",
    "mes.telemetry",
    "crm.sync",
    "notifications.email",
];
const JAVA_FRAMES: [&str; 8] = [
    "ru.shop.api.cart.CartService.total(CartService.kt:87)",
    "ru.shop.api.cart.CartController.get(CartController.kt:41)",
    "ru.shop.api.catalog.ProductRepository.findBySku(ProductRepository.kt:112)",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
    "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:658)",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)",
    "com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)",
    "org.postgresql.jdbc.PgStatement.executeQuery(PgStatement.java:224)",
];
const JAVA_ERRORS: [&str; 4] = [
    "java.lang.NullPointerException: Cannot invoke \"Cart.getItems()\" because \"cart\" is null",
    "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request timed out after 30000ms.",
    "org.springframework.dao.DataIntegrityViolationException: could not execute statement",
    "java.util.concurrent.TimeoutException: Did not observe any item or terminal signal within 5000ms",
];
const GO_FRAMES: [&str; 5] = [
    "checkout/internal/order.(*Service).Create(0xc000a1e000, {0x1a2b3c0, 0xc0004f2c30})\n\t/src/internal/order/service.go:142 +0x1d4",
    "checkout/internal/payment.(*Client).Authorize(0xc0001b8000, {0x1a2b3c0, 0xc0004f2c30})\n\t/src/internal/payment/client.go:88 +0x2f1",
    "checkout/internal/http.(*Handler).PostOrder(0xc0002c4000, {0x1a3f2e0, 0xc000512000}, 0xc0005a6300)\n\t/src/internal/http/orders.go:57 +0x3a5",
    "net/http.HandlerFunc.ServeHTTP(0xc0005a6200, {0x1a3f2e0, 0xc000512000}, 0xc0005a6300)\n\t/usr/local/go/src/net/http/server.go:2136 +0x29",
    "net/http.(*conn).serve(0xc0003fe000, {0x1a40a38, 0xc0002a5e60})\n\t/usr/local/go/src/net/http/server.go:2009 +0x5f4",
];

impl Generator {
    pub(crate) fn new(seed: u64, loghub: LoghubTemplates) -> Generator {
        Generator {
            rng: fastrand::Rng::with_seed(seed),
            loghub,
        }
    }

    /// A level by the services' proportions: 15 % debug, 75 % info, 7 % warn, 3 % error.
    fn level(&mut self) -> &'static str {
        match self.rng.u32(0..100) {
            0..15 => "debug",
            15..90 => "info",
            90..97 => "warn",
            _ => "error",
        }
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.rng.usize(0..xs.len())]
    }

    fn user(&mut self) -> String {
        format!("u-{}", self.rng.u32(100_000..2_000_000))
    }

    fn order(&mut self) -> String {
        format!("ORD-{}", self.rng.u32(10_000_000..99_999_999))
    }

    fn sku(&mut self) -> String {
        format!("SKU-{}", self.rng.u32(100_000..160_000))
    }

    fn trace(&mut self) -> String {
        format!("{:016x}{:016x}", self.rng.u64(..), self.rng.u64(..))
    }

    fn amount(&mut self) -> String {
        format!(
            "{}.{:02}",
            self.rng.u32(99..60_000),
            self.pick(&[0, 0, 0, 90, 99, 50])
        )
    }

    fn public_ip(&mut self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.rng.u8(1..224),
            self.rng.u8(..),
            self.rng.u8(..),
            self.rng.u8(1..255)
        )
    }

    fn internal_ip(&mut self) -> String {
        format!("10.0.{}.{}", self.rng.u8(0..8), self.rng.u8(2..250))
    }

    /// A latency with a long tail: mostly tens of ms, sometimes seconds.
    fn latency(&mut self) -> u64 {
        let base = self.rng.u64(3..60);
        match self.rng.u32(0..100) {
            0..85 => base,
            85..98 => base * 8,
            _ => base * 60,
        }
    }

    fn host(&mut self, hosts: &[&str]) -> String {
        self.pick(hosts).to_owned()
    }

    /// The next line, by the service mix.
    pub(crate) fn next(&mut self) -> Entry {
        let mut w = self.rng.u32(0..1000);
        let mut which = SERVICES.len() - 1;
        for (i, (_, weight, _)) in SERVICES.iter().enumerate() {
            if w < *weight {
                which = i;
                break;
            }
            w -= weight;
        }
        let (service, _, hosts) = SERVICES[which];
        match service {
            "shop-api" => self.shop_api(hosts),
            "checkout" => self.checkout(hosts),
            "payments" => self.payments(hosts),
            "mes-line-1" => self.mes(service, hosts, 1),
            "mes-line-2" => self.mes(service, hosts, 2),
            "crm" => self.crm(hosts),
            "rabbitmq" => self.rabbitmq(hosts),
            _ => self.loghub_line(),
        }
    }

    /// The `n`th line carrying [`RARE_NEEDLE`] (1-based), from one of a few services.
    pub(crate) fn rare(&mut self, n: usize) -> Entry {
        let user = self.user();
        let amount = self.amount();
        let (service, host, level, message) = match n % 4 {
            0 => (
                "payments",
                "payments-1",
                "info",
                format!(
                    "payment captured order_id={RARE_NEEDLE} amount={amount} currency=RUB provider=sbp"
                ),
            ),
            1 => (
                "checkout",
                "checkout-2",
                "warn",
                format!(
                    "delivery slot moved for order {RARE_NEEDLE}: courier unavailable, new slot 14:00-18:00"
                ),
            ),
            2 => (
                "crm",
                "crm-1",
                "info",
                format!(
                    "ticket TCK-{} opened by {user}: complaint about order {RARE_NEEDLE} (parcel not delivered)",
                    self.rng.u32(100_000..999_999)
                ),
            ),
            _ => (
                "payments",
                "payments-2",
                "error",
                format!(
                    "refund failed order_id={RARE_NEEDLE} amount={amount}: provider timeout after 30000ms"
                ),
            ),
        };
        Entry::new(service, host.to_owned(), level, message)
            .field("user_id", Value::Str(user))
            .field("order_id", Value::Str(RARE_NEEDLE.to_owned()))
    }

    fn shop_api(&mut self, hosts: &[&str]) -> Entry {
        let host = self.host(hosts);
        let level = self.level();
        let trace = self.trace();
        let user = self.user();
        let e = match level {
            "debug" => {
                let sku = self.sku();
                let m = match self.rng.u32(0..4) {
                    0 => format!("cache hit key=product:{sku} ttl=300s"),
                    1 => format!("cache miss key=product:{sku}, loading from db"),
                    2 => format!(
                        "sql: SELECT id, name, price, stock FROM products WHERE sku = $1 took {}ms rows=1",
                        self.rng.u32(1..40)
                    ),
                    _ => format!(
                        "feature flag new-checkout={} for user {user}",
                        self.rng.bool()
                    ),
                };
                Entry::new("shop-api", host, level, m).field("sku", Value::Str(sku))
            }
            "info" if self.rng.u32(0..100) < 80 => return self.access(host, trace, user, None),
            "info" => {
                let m = match self.rng.u32(0..3) {
                    0 => format!(
                        "user logged in user_id={user} method={}",
                        self.pick(&["password", "sms", "vk_id", "sber_id"])
                    ),
                    1 => {
                        let sku = self.sku();
                        format!(
                            "cart updated user_id={user} sku={sku} qty={} cart_total={}",
                            self.rng.u32(1..5),
                            self.amount()
                        )
                    }
                    _ => format!(
                        "search query=\"{}\" results={} took_ms={}",
                        self.pick(&SEARCH_TERMS),
                        self.rng.u32(0..500),
                        self.rng.u32(5..120)
                    ),
                };
                Entry::new("shop-api", host, level, m)
            }
            "warn" => {
                if self.rng.bool() {
                    let status = self.pick(&[400, 401, 403, 404, 404, 404, 409, 429]);
                    return self.access(host, trace, user, Some(status));
                }
                let m = match self.rng.bool() {
                    true => format!(
                        "slow request path=/api/v1/search duration_ms={} threshold_ms=1000",
                        self.rng.u32(1000..6000)
                    ),
                    false => format!(
                        "rate limit exceeded client_ip={} limit=100/min",
                        self.public_ip()
                    ),
                };
                Entry::new("shop-api", host, level, m)
            }
            _ => {
                if self.rng.bool() {
                    let status = self.pick(&[500, 502, 503, 504]);
                    return self.access(host, trace, user, Some(status));
                }
                let mut m = format!(
                    "unhandled exception on GET /api/v1/cart: {}",
                    self.pick(&JAVA_ERRORS)
                );
                for _ in 0..self.rng.usize(4..9) {
                    let _ = write!(m, "\n\tat {}", self.pick(&JAVA_FRAMES));
                }
                Entry::new("shop-api", host, level, m)
            }
        };
        e.field("trace_id", Value::Str(trace))
            .field("user_id", Value::Str(user))
    }

    /// An access line of `shop-api`: status by the usual mix unless given.
    fn access(&mut self, host: String, trace: String, user: String, status: Option<u64>) -> Entry {
        let status = status.unwrap_or_else(|| {
            self.pick(&[200, 200, 200, 200, 200, 200, 200, 200, 200, 201, 204, 304])
        });
        let level = match status {
            500.. => "error",
            400.. => "warn",
            _ => "info",
        };
        let path = self.pick(&STORE_PATHS);
        let sku = self.sku();
        let path = path
            .replace("{sku}", &sku)
            .replace("{order}", &self.order())
            .replace("{user}", &user)
            .replace("{cat}", &self.rng.u32(1..400).to_string());
        let method = if path.contains("cart") && self.rng.bool() {
            "POST"
        } else {
            "GET"
        };
        let latency = self.latency();
        let m = format!(
            "http request method={method} path={path} status={status} duration_ms={latency} bytes={} client_ip={} ua=\"{}\"",
            self.rng.u32(120..90_000),
            self.public_ip(),
            self.pick(&USER_AGENTS)
        );
        let mut e = Entry::new("shop-api", host, level, m)
            .field("trace_id", Value::Str(trace))
            .field("latency_ms", Value::Num(latency))
            .field("http_status", Value::Num(status));
        if self.rng.u32(0..10) < 7 {
            e = e.field("user_id", Value::Str(user));
        }
        if path.contains("/products/") {
            e = e.field("sku", Value::Str(sku));
        }
        e
    }

    fn checkout(&mut self, hosts: &[&str]) -> Entry {
        let host = self.host(hosts);
        let level = self.level();
        let (user, order, trace) = (self.user(), self.order(), self.trace());
        let m = match level {
            "debug" => format!(
                "inventory reserve request sku={} qty={} warehouse={}",
                self.sku(),
                self.rng.u32(1..4),
                self.pick(&["msk-1", "msk-2", "spb-1", "ekb-1"])
            ),
            "info" => match self.rng.u32(0..4) {
                0 => format!(
                    "checkout started cart_id=c-{} user_id={user} items={} total={} RUB",
                    self.rng.u32(1_000_000..9_999_999),
                    self.rng.u32(1..12),
                    self.amount()
                ),
                1 => format!(
                    "order created order_id={order} user_id={user} total={} delivery={}",
                    self.amount(),
                    self.pick(&["courier", "pickup", "post", "locker"])
                ),
                2 => format!(
                    "promo code applied code={} order_id={order} discount={}%",
                    self.pick(&PROMO),
                    self.pick(&[5, 10, 15, 25])
                ),
                _ => format!(
                    "delivery slot reserved order_id={order} slot=2026-12-0{} {}:00-{}:00 warehouse=msk-2",
                    self.rng.u32(1..8),
                    self.pick(&[9, 10, 14, 18]),
                    self.pick(&[13, 14, 18, 22])
                ),
            },
            "warn" => match self.rng.bool() {
                true => format!(
                    "inventory reservation slow sku={} took_ms={}",
                    self.sku(),
                    self.rng.u32(1000..4000)
                ),
                false => format!(
                    "payment retry order_id={order} attempt={}",
                    self.rng.u32(2..4)
                ),
            },
            _ => {
                if self.rng.bool() {
                    format!(
                        "order creation failed order_id={order}: context deadline exceeded calling payments (5000ms)"
                    )
                } else {
                    let mut m = format!(
                        "panic recovered: runtime error: invalid memory address or nil pointer dereference\ngoroutine {} [running]:",
                        self.rng.u32(100..90_000)
                    );
                    for _ in 0..self.rng.usize(3..6) {
                        let _ = write!(m, "\n{}", self.pick(&GO_FRAMES));
                    }
                    m
                }
            }
        };
        let mut e = Entry::new("checkout", host, level, m)
            .field("trace_id", Value::Str(trace))
            .field("user_id", Value::Str(user))
            .field("order_id", Value::Str(order));
        if level != "debug" {
            let latency = self.latency();
            e = e.field("latency_ms", Value::Num(latency));
        }
        e
    }

    fn payments(&mut self, hosts: &[&str]) -> Entry {
        let host = self.host(hosts);
        let level = self.level();
        let (user, order, trace) = (self.user(), self.order(), self.trace());
        let provider = self.pick(&PROVIDERS);
        let latency = self.latency();
        let m = match level {
            "debug" => {
                format!("provider response provider={provider} http_status=200 took_ms={latency}")
            }
            "info" => match self.rng.u32(0..4) {
                0 => format!(
                    "payment authorized order_id={order} amount={} currency=RUB provider={provider} auth_code={:06}",
                    self.amount(),
                    self.rng.u32(0..1_000_000)
                ),
                1 => format!(
                    "payment captured order_id={order} amount={} currency=RUB provider={provider}",
                    self.amount()
                ),
                2 => format!(
                    "refund issued order_id={order} amount={} reason=customer_request",
                    self.amount()
                ),
                _ => format!(
                    "fiscal receipt sent to OFD order_id={order} fn=99990789{:08} fd={} fpd={}",
                    self.rng.u32(0..100_000_000),
                    self.rng.u32(1..200_000),
                    self.rng.u32(1_000_000_000..4_000_000_000)
                ),
            },
            "warn" => match self.rng.bool() {
                true => {
                    format!("3-D Secure challenge timed out order_id={order} provider={provider}")
                }
                false => format!("provider slow provider={provider} took_ms={}", latency * 20),
            },
            _ => match self.rng.bool() {
                true => {
                    let (reason, code) = self.pick(&DECLINES);
                    format!(
                        "payment declined order_id={order} reason={reason} code={code} provider={provider}"
                    )
                }
                false => format!(
                    "provider error provider={provider}: HTTP 502 Bad Gateway after 3 retries (order_id={order})"
                ),
            },
        };
        Entry::new("payments", host, level, m)
            .field("trace_id", Value::Str(trace))
            .field("user_id", Value::Str(user))
            .field("order_id", Value::Str(order))
            .field("latency_ms", Value::Num(latency))
    }

    fn mes(&mut self, service: &'static str, hosts: &[&str], line: u32) -> Entry {
        let host = self.host(hosts);
        let level = self.level();
        let station = self.rng.u32(1..13);
        let m = match level {
            "debug" => match self.rng.bool() {
                true => format!(
                    "OPC UA read ns=2;s=Line{line}.ST{station:02}.Torque value={}.{:02} quality=Good",
                    self.rng.u32(8..16),
                    self.rng.u32(0..100)
                ),
                false => format!(
                    "PLC heartbeat plc=plc-{station:02} seq={}",
                    self.rng.u32(0..10_000_000)
                ),
            },
            "info" => match self.rng.u32(0..10) {
                0 => format!(
                    "work order WO-{} started product=PN-{} qty={} line=L{line}",
                    self.rng.u32(200_000..300_000),
                    self.rng.u32(440_000..450_000),
                    self.pick(&[50, 100, 200, 500])
                ),
                1 => format!(
                    "shift {} started operator=op-{} line=L{line}",
                    self.pick(&["A", "B", "C"]),
                    self.rng.u32(100..400)
                ),
                _ => format!(
                    "station ST-{station:02} cycle completed part=PN-{} serial=SN26120{} cycle_time={}.{}s torque={}.{}Nm result=OK",
                    self.rng.u32(440_000..450_000),
                    self.rng.u32(10_000_000..99_999_999),
                    self.rng.u32(38..47),
                    self.rng.u32(0..10),
                    self.rng.u32(11..14),
                    self.rng.u32(0..10)
                ),
            },
            "warn" => match self.rng.bool() {
                true => format!(
                    "station ST-{station:02} cycle time {}.{}s above target 45.0s",
                    self.rng.u32(46..80),
                    self.rng.u32(0..10)
                ),
                false => format!(
                    "tool wear tool=T-{} cycles={} limit=50000",
                    self.rng.u32(1..40),
                    self.rng.u32(45_000..50_000)
                ),
            },
            _ => match self.rng.bool() {
                true => format!(
                    "PLC connection lost station=ST-{station:02} endpoint=opc.tcp://plc-{station:02}.line{line}.local:4840 retry_in=5s: BadCommunicationError (0x80050000)"
                ),
                false => format!(
                    "quality check failed serial=SN26120{} defect={} camera=QC-{} score=0.{}",
                    self.rng.u32(10_000_000..99_999_999),
                    self.pick(&DEFECTS),
                    self.rng.u32(1..4),
                    self.rng.u32(10..60)
                ),
            },
        };
        Entry::new(service, host, level, m)
    }

    fn crm(&mut self, hosts: &[&str]) -> Entry {
        let host = self.host(hosts);
        let level = self.level();
        let user = self.user();
        let agent = self.rng.u32(1..80);
        let customer = self.rng.u32(100_000..999_999);
        let m = match level {
            "debug" => format!(
                "loaded customer card customer_id=C-{customer} took_ms={}",
                self.rng.u32(2..90)
            ),
            "info" => match self.rng.u32(0..4) {
                0 => format!(
                    "customer updated customer_id=C-{customer} fields={} by=agent-{agent}",
                    self.pick(&["phone", "address", "phone,address", "email", "loyalty_tier"])
                ),
                1 => format!(
                    "lead created lead_id=L-{} source={} campaign={}",
                    self.rng.u32(1_000_000..9_999_999),
                    self.pick(&["web", "call", "partner", "marketplace"]),
                    self.pick(&["black-friday", "new-year", "retention-q4", "none"])
                ),
                2 => format!(
                    "ticket TCK-{} status changed {} by=agent-{agent}",
                    self.rng.u32(100_000..999_999),
                    self.pick(&[
                        "open -> in_progress",
                        "in_progress -> resolved",
                        "resolved -> closed",
                        "open -> waiting_customer"
                    ])
                ),
                _ => format!(
                    "deal DL-{} stage negotiation -> won amount={} RUB",
                    self.rng.u32(10_000..99_999),
                    self.amount()
                ),
            },
            "warn" => match self.rng.bool() {
                true => format!(
                    "duplicate customer candidate customer_id=C-{customer} match=C-{} score=0.9{}",
                    self.rng.u32(100_000..999_999),
                    self.rng.u32(0..10)
                ),
                false => format!(
                    "SLA breach risk ticket TCK-{} age={}h{}m",
                    self.rng.u32(100_000..999_999),
                    self.rng.u32(3..8),
                    self.rng.u32(0..60)
                ),
            },
            _ => match self.rng.bool() {
                true => format!(
                    "sync to 1C failed batch={} records={}: HTTP 502 Bad Gateway",
                    self.rng.u32(10_000..99_999),
                    self.rng.u32(10..500)
                ),
                false => format!(
                    "notification delivery failed ticket=TCK-{}: 550 5.1.1 mailbox unavailable",
                    self.rng.u32(100_000..999_999)
                ),
            },
        };
        Entry::new("crm", host, level, m).field("user_id", Value::Str(user))
    }

    fn rabbitmq(&mut self, hosts: &[&str]) -> Entry {
        let host = self.host(hosts);
        let node = host.replace("rabbit-", "rabbit@mq-");
        let level = self.level();
        let pid = format!("<0.{}.0>", self.rng.u32(1000..60_000));
        let conn = format!(
            "{}:{} -> {}:5672",
            self.internal_ip(),
            self.rng.u32(32_768..61_000),
            self.internal_ip()
        );
        let user = self.pick(&["shop", "checkout", "payments", "mes", "crm"]);
        let m = match level {
            "debug" => format!(
                "node {node} up, {} of 3 nodes running, {} connections",
                self.pick(&[3, 3, 3, 2]),
                self.rng.u32(40..400)
            ),
            "info" => match self.rng.u32(0..4) {
                0 => format!("accepting AMQP connection {pid} ({conn})"),
                1 => format!(
                    "connection {pid} ({conn}): user '{user}' authenticated and granted access to vhost '/'"
                ),
                2 => format!("closing AMQP connection {pid} ({conn}, vhost: '/', user: '{user}')"),
                _ => format!(
                    "queue '{}' in vhost '/': {} consumers, {} messages ready, {} unacked",
                    self.pick(&QUEUES),
                    self.rng.u32(1..9),
                    self.rng.u32(0..20_000),
                    self.rng.u32(0..200)
                ),
            },
            "warn" => match self.rng.bool() {
                true => format!(
                    "closing AMQP connection {pid} ({conn}, vhost: '/', user: '{user}'):\nclient unexpectedly closed TCP connection"
                ),
                false => format!(
                    "memory resource limit alarm set on node '{node}'.\n\n**********************************************************\n*** Publishers will be blocked until this alarm clears ***\n**********************************************************"
                ),
            },
            _ => match self.rng.bool() {
                true => format!(
                    "Channel error on connection {pid} ({conn}, vhost: '/', user: '{user}'), channel 1:\noperation basic.publish caused a channel exception not_found: no exchange '{}' in vhost '/'",
                    self.pick(&QUEUES)
                ),
                false => format!(
                    "closing AMQP connection {pid} ({conn}):\nmissed heartbeats from client, timeout: 60s"
                ),
            },
        };
        Entry::new("rabbitmq", host, level, m)
    }

    fn loghub_line(&mut self) -> Entry {
        let set = self.rng.usize(0..self.loghub.sets.len());
        let i = self.rng.usize(0..self.loghub.sets[set].len());
        let line = &self.loghub.sets[set][i];
        let (service, level) = (line.service, line.level);
        // Vary every digit, so that copies of a line differ as real ids and counters do.
        let message: String = line
            .message
            .chars()
            .map(|c| {
                if c.is_ascii_digit() {
                    char::from(b'0' + self.rng.u8(0..10))
                } else {
                    c
                }
            })
            .collect();
        let host = self.pick(&LOGHUB_HOSTS);
        Entry::new(service, format!("{service}-{host}"), level, message)
    }
}
