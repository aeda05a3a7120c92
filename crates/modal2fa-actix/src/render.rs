//! Templates (Tera, autoescaped `.html`), the modal protocol, and per-modal appearance.
//!
//! A GET of a modal URL answers the modal's inner content when htmx asked for it
//! (`HX-Request`), or a full page showing the modal otherwise. A POST answers the
//! re-rendered content, or a command: htmx headers (`HX-Trigger: modal2fa:close`,
//! `HX-Refresh`, `HX-Redirect`) for htmx, a `303 See Other` for plain forms.

use std::collections::BTreeMap;
use std::path::Path;

use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

/// How one modal looks; unset fields keep the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModalAppearance {
    /// `sm`, `lg` or `xl`.
    pub size: Option<String>,
    /// Replaces the title.
    pub title: Option<String>,
    /// Extra CSS classes on the modal content.
    pub classes: Option<String>,
}

/// A template failed to load or render.
#[derive(Debug)]
pub struct RenderError(pub String);

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "template error: {}", self.0)
    }
}

impl std::error::Error for RenderError {}

/// Why [`Builder::build`](crate::Builder::build) refused the settings.
#[derive(Debug)]
pub enum BuildError {
    /// A template failed to load (an override directory's, most likely).
    Templates(RenderError),
    /// `WebSettings::appearance` names a modal there is not.
    UnknownAppearance {
        /// The key as configured.
        key: String,
        /// The modal names there are.
        valid: Vec<String>,
    },
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Templates(e) => e.fmt(f),
            Self::UnknownAppearance { key, valid } => write!(
                f,
                "appearance: there is no modal {key:?}; the modals are {}",
                valid.join(", ")
            ),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Templates(e) => Some(e),
            Self::UnknownAppearance { .. } => None,
        }
    }
}

impl From<RenderError> for BuildError {
    fn from(e: RenderError) -> Self {
        Self::Templates(e)
    }
}

/// The loaded templates.
pub struct Renderer {
    tera: tera::Tera,
}

impl Renderer {
    /// Loads the embedded templates, then every `.html`/`.txt` file of `overrides` (which
    /// replace embedded ones of the same relative name).
    pub fn new(overrides: Option<&Path>) -> Result<Self, RenderError> {
        let mut all: BTreeMap<String, String> =
            modal2fa_web_assets::templates().into_iter().collect();
        if let Some(dir) = overrides {
            collect(dir, dir, &mut all)?;
        }
        let mut tera = tera::Tera::new();
        tera.add_raw_templates(all.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| RenderError(format!("{e:?}")))?;
        Ok(Self { tera })
    }

    /// The modals there are, by name (`login` for `modals/login.html`, …), sorted: the
    /// keys `WebSettings::appearance` may use.
    pub fn modal_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .tera
            .get_template_names()
            .filter_map(|t| t.strip_prefix("modals/")?.strip_suffix(".html"))
            .filter(|n| !n.contains('/'))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    /// Renders a template.
    pub fn render(&self, name: &str, ctx: &tera::Context) -> Result<String, RenderError> {
        self.tera
            .render(name, ctx)
            .map_err(|e| RenderError(format!("{name}: {e:?}")))
    }
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<(), RenderError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| RenderError(format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let path = entry.map_err(|e| RenderError(e.to_string()))?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|x| x == "html" || x == "txt") {
            let name = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path)
                .map_err(|e| RenderError(format!("{}: {e}", path.display())))?;
            out.insert(name, text);
        }
    }
    Ok(())
}

/// Whether htmx made the request.
pub fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().get("HX-Request").is_some_and(|v| v == "true")
}

/// What a POST leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Close the modal and reload the page.
    Reload,
    /// Go to this local path.
    Redirect(String),
    /// Close the modal only.
    Close,
}

/// The response for a command.
pub fn command(req: &HttpRequest, cmd: Command, fallback: &str) -> HttpResponse {
    if is_htmx(req) {
        let mut r = HttpResponse::Ok();
        match &cmd {
            Command::Reload => r.insert_header(("HX-Refresh", "true")),
            Command::Redirect(to) => r.insert_header(("HX-Redirect", to.as_str())),
            Command::Close => r.insert_header(("HX-Trigger", "modal2fa:close")),
        };
        return r.finish();
    }
    let to = match cmd {
        Command::Redirect(to) => to,
        _ => fallback.to_owned(),
    };
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}

/// `next` if it is a local path, else `fallback`: never an off-site redirect.
pub fn safe_next(next: Option<&str>, fallback: &str) -> String {
    match next.map(str::trim) {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control() || c == '\\') =>
        {
            n.to_owned()
        }
        _ => fallback.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_accepted_as_next() {
        assert_eq!(safe_next(Some("/account/"), "/"), "/account/");
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "",
            "evil",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad), "/home"), "/home", "{bad:?}");
        }
        assert_eq!(safe_next(None, "/home"), "/home");
    }
}
