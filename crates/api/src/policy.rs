//! The route-policy registry: the one place where every route declares who may call it.
//!
//! Routes are added only through [`Registry::route`], which takes a [`Policy`]; the registry
//! builds the axum router and a table from (method, path pattern) to policy. The
//! authorization middleware ([`crate::auth::authorize`]) looks every matched request up in
//! that table and refuses any route missing from it (deny by default), so a route that
//! bypassed the registry answers 403, never data. `tests/route_policies.rs` compares the table
//! with a hand-written fixture and calls every route anonymously.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};
use dozor_model::Scope;

use crate::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Anyone, without credentials: health checks, and the login and refresh endpoints that
    /// hand out credentials.
    Public,
    /// Any authenticated principal, whatever its scopes (e.g. "who am I", logout).
    Authenticated,
    /// An authenticated principal holding this scope.
    Scope(Scope),
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Policy::Public => f.write_str("public"),
            Policy::Authenticated => f.write_str("authenticated"),
            Policy::Scope(s) => write!(f, "scope:{s}"),
        }
    }
}

/// One registered route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// axum path pattern (`/api/v1/tokens/{id}`).
    pub path: &'static str,
    /// Who may call it.
    pub policy: Policy,
}

/// Policies by path pattern, then method, as the middleware consults them.
pub type PolicyTable = Arc<HashMap<&'static str, Vec<(Method, Policy)>>>;

/// Collects routes with their policies, then builds the router.
#[derive(Default)]
pub struct Registry {
    specs: Vec<RouteSpec>,
    routes: BTreeMap<&'static str, MethodRouter<AppState>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers `handler` for `method` on `path`, callable under `policy`.
    ///
    /// # Panics
    /// If the same method and path are registered twice (a programming error, caught by
    /// every test that builds the router).
    pub fn route<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        policy: Policy,
        handler: H,
    ) -> Registry
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        assert!(
            !self
                .specs
                .iter()
                .any(|s| s.method == method && s.path == path),
            "BUG: route {method} {path} registered twice"
        );
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("BUG: unsupported method {method} for {path}"));
        let method_router = on(filter, handler);
        let entry = self.routes.remove(path);
        let merged = match entry {
            Some(existing) => existing.merge(method_router),
            None => method_router,
        };
        self.routes.insert(path, merged);
        self.specs.push(RouteSpec {
            method,
            path,
            policy,
        });
        self
    }

    /// Every registered route, in registration order.
    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    /// The policy table and the router (without state, layers or fallback).
    pub fn into_parts(self) -> (PolicyTable, Router<AppState>) {
        let mut table: HashMap<&'static str, Vec<(Method, Policy)>> = HashMap::new();
        for s in &self.specs {
            table
                .entry(s.path)
                .or_default()
                .push((s.method.clone(), s.policy));
        }
        let router = self
            .routes
            .into_iter()
            .fold(Router::new(), |r, (path, mr)| r.route(path, mr));
        (Arc::new(table), router)
    }
}

/// The policy for a matched request; `HEAD` is served by `GET` handlers and shares their
/// policy. `None` means the route is not in the registry: refuse it.
pub fn lookup(table: &PolicyTable, method: &Method, path: &str) -> Option<Policy> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    table
        .get(path)?
        .iter()
        .find(|(m, _)| m == method)
        .map(|(_, p)| *p)
}
