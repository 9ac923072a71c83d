//! The web dashboard: server-rendered HTML (askama templates under `templates/`,
//! auto-escaped), readable without JavaScript, every asset built into the binary.
//!
//! [`routes`] wires the pages with absolute paths (`/ui/...`): the public ones (the
//! login form, the static assets) and the pages behind a session
//! ([`session::require`]: a valid session cookie, the route's rule of
//! [`crate::access::rules::RULES`] for the session's role, and on every state-changing
//! request the CSRF field and the `Origin` header). Every answer carries the security
//! headers of [`security_headers`].
//!
//! A page handler stays thin: it asks storage or the engine, fills a template struct
//! that embeds a [`Chrome`] (the layout's user, role, CSRF token and current nav item)
//! and returns it through [`Page`].

use askama::Template;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::AppState;
use crate::access::{Need, Role};
use crate::error::ApiError;

pub mod admin;
pub mod assets;
pub mod audit;
pub mod chart;
pub mod commands;
pub mod compliance;
pub mod deployments;
pub mod host_list;
pub mod hosts;
pub mod overview;
pub mod paging;
pub mod reboots;
pub mod session;
pub mod vulns;
pub mod webhooks;
pub mod windows;

pub use session::UiSession;

/// What every page's layout (`templates/base.html`) shows: who is logged in, with which
/// role, the CSRF token of the logout form (and of every other form), and which nav item
/// is current.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The user's name.
    pub username: String,
    /// The user's role in the organisation.
    pub role: Role,
    /// The session's CSRF token, the hidden `csrf` field of every form.
    pub csrf: String,
    /// The current nav item: `overview`, `hosts`, `reboots`, `vulns`, `commands`, `windows`,
    /// `webhooks`, `audit`, `admin`.
    pub nav: &'static str,
}

/// One item of the navigation bar.
#[derive(Debug, Clone, Copy)]
pub struct NavItem {
    /// The key [`Chrome::nav`] names.
    pub key: &'static str,
    /// What the link says.
    pub label: &'static str,
    /// Where it goes.
    pub href: &'static str,
    /// What the role needs to see it.
    pub need: Need,
}

/// The navigation bar, in order.
pub const NAV: [NavItem; 12] = [
    NavItem {
        key: "overview",
        label: "Overview",
        href: "/ui/",
        need: Need::Read,
    },
    NavItem {
        key: "hosts",
        label: "Hosts",
        href: "/ui/hosts",
        need: Need::Read,
    },
    NavItem {
        key: "reboots",
        label: "Reboots",
        href: "/ui/reboots",
        need: Need::Read,
    },
    NavItem {
        key: "vulns",
        label: "Vulnerabilities",
        href: "/ui/vulns",
        need: Need::Read,
    },
    NavItem {
        key: "compliance",
        label: "Compliance",
        href: "/ui/compliance",
        need: Need::Read,
    },
    NavItem {
        key: "exceptions",
        label: "Exceptions",
        href: "/ui/exceptions",
        need: Need::Read,
    },
    NavItem {
        key: "commands",
        label: "Commands",
        href: "/ui/commands",
        need: Need::Read,
    },
    NavItem {
        key: "deployments",
        label: "Deployments",
        href: "/ui/deployments",
        need: Need::Read,
    },
    NavItem {
        key: "windows",
        label: "Windows",
        href: "/ui/windows",
        need: Need::Read,
    },
    NavItem {
        key: "webhooks",
        label: "Webhooks",
        href: "/ui/webhooks",
        need: Need::Read,
    },
    NavItem {
        key: "audit",
        label: "Audit",
        href: "/ui/audit",
        need: Need::Audit,
    },
    NavItem {
        key: "admin",
        label: "Admin",
        href: "/ui/admin",
        need: Need::Administer,
    },
];

impl Chrome {
    /// The nav items the role may open.
    pub fn items(&self) -> Vec<NavItem> {
        NAV.iter()
            .copied()
            .filter(|i| self.role.allows(i.need))
            .collect()
    }

    /// Whether the role may do what `need` names (templates hide what it may not; the
    /// server refuses it anyway).
    pub fn may(&self, need: Need) -> bool {
        self.role.allows(need)
    }

    /// Whether the role may queue and cancel commands.
    pub fn may_operate(&self) -> bool {
        self.may(Need::Operate)
    }

    /// Whether the role may administer (keys, users, hosts' standing).
    pub fn may_administer(&self) -> bool {
        self.may(Need::Administer)
    }

    /// URL of the stylesheet (content-hashed).
    pub fn css(&self) -> &'static str {
        assets::css_url()
    }

    /// URL of the script (content-hashed).
    pub fn js(&self) -> &'static str {
        assets::js_url()
    }
}

/// Why a page could not be shown; rendered as an HTML page that says what happened and
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The form's CSRF token is missing or wrong, or the `Origin` is another site's.
    #[error(
        "this form was refused: {0}. Reload the page you came from and submit it again; \
         if it keeps happening, log out and in again"
    )]
    Csrf(&'static str),
    /// The role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The session is missing or over.
    #[error("your session has ended; log in again")]
    NoSession,
    /// Too many attempts.
    #[error("too many attempts; wait {0} seconds and try again")]
    RateLimited(u64),
    /// The request was wrong.
    #[error("{0}")]
    BadRequest(String),
    /// What the operator API would have answered (status and message kept).
    #[error("{}", .0.message)]
    Api(ApiError),
    /// A template failed to render (a bug; logged).
    #[error("the page could not be rendered; the platform logged it")]
    Render(#[from] askama::Error),
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError::Api(e)
    }
}

impl From<patchctl_storage::StorageError> for UiError {
    fn from(e: patchctl_storage::StorageError) -> Self {
        UiError::Api(e.into())
    }
}

impl UiError {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            UiError::Csrf(_) | UiError::Forbidden(_) => StatusCode::FORBIDDEN,
            UiError::NoSession => StatusCode::UNAUTHORIZED,
            UiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            UiError::Api(e) => e.status,
            UiError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: String,
    css: &'static str,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        if let UiError::Render(e) = &self {
            tracing::error!(error = %e, "a dashboard template failed to render");
        }
        let status = self.status();
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: self.to_string(),
            css: assets::css_url(),
        };
        let body = page
            .render()
            .unwrap_or_else(|_| "the page could not be rendered".to_owned());
        let mut resp = (status, Html(body)).into_response();
        if let UiError::RateLimited(secs) = self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// A rendered template as an HTML answer.
pub struct Page<T>(pub T);

impl<T: Template> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        match self.0.render() {
            Ok(body) => Html(body).into_response(),
            Err(e) => UiError::Render(e).into_response(),
        }
    }
}

/// The security headers of every `/ui` answer: a Content-Security-Policy that allows
/// only the platform's own script and styles (no inline script), no framing, no
/// referrer to other sites, no content sniffing.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// The pages behind a session. Every route here has its rule in
/// [`crate::access::rules::RULES`] (a route without one is refused for everyone).
fn pages() -> Router<AppState> {
    Router::new()
        .route("/ui/", get(overview::overview))
        .route("/ui/hosts", get(host_list::list))
        .route("/ui/hosts/{host}", get(hosts::show))
        .route("/ui/hosts/{host}/commands", post(hosts::queue))
        .route("/ui/reboots", get(reboots::list))
        .route("/ui/vulns", get(vulns::list))
        .route("/ui/vulns/{id}", get(vulns::show))
        .route("/ui/compliance", get(compliance::page))
        .route("/ui/compliance/policy", post(compliance::set_policy))
        .route(
            "/ui/exceptions",
            get(compliance::exceptions).post(compliance::create),
        )
        .route(
            "/ui/exceptions/{exception}/revoke",
            post(compliance::revoke),
        )
        .route("/ui/commands", get(commands::list))
        .route("/ui/commands/{id}", get(commands::show))
        .route("/ui/commands/{id}/cancel", post(commands::cancel))
        .route(
            "/ui/deployments",
            get(deployments::list).post(deployments::create),
        )
        .route("/ui/deployments/{deployment}", get(deployments::show))
        .route(
            "/ui/deployments/{deployment}/pause",
            post(deployments::pause),
        )
        .route(
            "/ui/deployments/{deployment}/resume",
            post(deployments::resume),
        )
        .route(
            "/ui/deployments/{deployment}/cancel",
            post(deployments::cancel),
        )
        .route("/ui/windows", get(windows::page).post(windows::create))
        .route("/ui/windows/{window}/delete", post(windows::delete))
        .route("/ui/audit", get(audit::list))
        .route("/ui/webhooks", get(webhooks::page).post(webhooks::create))
        .route("/ui/webhooks/{webhook}", get(webhooks::show))
        .route("/ui/webhooks/{webhook}/test", post(webhooks::test))
        .route("/ui/webhooks/{webhook}/rotate", post(webhooks::rotate))
        .route("/ui/webhooks/{webhook}/delete", post(webhooks::delete))
        .route("/ui/admin", get(admin::page))
        .route("/ui/admin/users", post(admin::create_user))
        .route("/ui/admin/users/{user}/role", post(admin::set_role))
        .route("/ui/admin/users/{user}/disable", post(admin::disable_user))
        .route("/ui/admin/tokens", post(admin::create_token))
        .route("/ui/admin/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/ui/admin/keys", post(admin::create_key))
        .route("/ui/admin/keys/{id}/revoke", post(admin::revoke_key))
        .route("/ui/admin/keys/{id}/rotate", post(admin::rotate_key))
}

/// Every dashboard route, with absolute paths (merged into the app by [`crate::app`]).
pub fn routes(state: &AppState) -> Router<AppState> {
    // The session and the route's rule, then (outside, so that refusals are recorded
    // too) the audit trail.
    let protected = pages()
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::require,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::audit::record,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/static/{file}", get(assets::serve))
        .merge(protected)
        .layer(middleware::from_fn(security_headers))
}
