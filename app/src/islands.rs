//! The only interactive part of Onramp, hydrated in the browser (Leptos islands): progressive
//! enhancement over server-rendered pages that already work without JavaScript.
//!
//! Once hydrated, [`Enhancer`]
//! - moves between Onramp's pages client-side: a same-origin link or a `form[data-enhance]` is
//!   fetched, and the new page's `#page` and title replace the old (history and Back keep working);
//! - sends the name and value of the button that submitted a form, as a browser does;
//! - reloads `#page` quietly (no focus move, no scroll) every `data-refresh-ms` while the page
//!   carries an element with that attribute (a discovery in progress);
//! - shows a pending state on the submitted form (`data-pending-label`, `aria-busy`) and blocks a
//!   second submit while the first is running;
//! - moves focus to the error summary when there is one, else to the new page's heading, and
//!   announces the new page in a live region.
//!
//! Anything unexpected (network error, an answer that is not HTML) falls back to a normal page load.

use leptos::prelude::*;

#[island]
pub fn Enhancer() -> impl IntoView {
    #[cfg(feature = "hydrate")]
    enhance::install();
    view! { <p id="page-status" class="visually-hidden" aria-live="polite" aria-atomic="true"></p> }
}

#[cfg(feature = "hydrate")]
mod enhance {
    use gloo_net::http::Request;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    use web_sys::{
        Document, DomParser, Element, Event, FormData, HtmlAnchorElement, HtmlElement, HtmlFormElement, MouseEvent,
        SupportedType, Url, UrlSearchParams,
    };

    fn window() -> web_sys::Window {
        web_sys::window().expect("a browser window")
    }

    fn document() -> Document {
        window().document().expect("a document")
    }

    pub fn install() {
        let doc = document();
        let html = doc.document_element().expect("an <html> element");
        let _ = html.set_attribute("data-enhanced", "");

        let on_click = Closure::<dyn FnMut(MouseEvent)>::new(on_click);
        let on_submit = Closure::<dyn FnMut(Event)>::new(on_submit);
        let on_popstate = Closure::<dyn FnMut(Event)>::new(|_: Event| {
            let href = window().location().href().unwrap_or_default();
            leptos::task::spawn_local(navigate(Nav::Get(href), History::Keep, None));
        });
        let _ = doc.add_event_listener_with_callback("click", on_click.as_ref().unchecked_ref());
        let _ = doc.add_event_listener_with_callback("submit", on_submit.as_ref().unchecked_ref());
        let _ = window().add_event_listener_with_callback("popstate", on_popstate.as_ref().unchecked_ref());
        // The listeners live as long as the page.
        on_click.forget();
        on_submit.forget();
        on_popstate.forget();
        refresh_later();
    }

    thread_local! {
        static ARMED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// While the page has `#discovery[data-refresh-ms]`, fetches the page again after that many
    /// milliseconds and replaces that element only (ticks in a form nearby stay as they are);
    /// when it is done and the page has no form to keep, the whole `#page` is replaced. Focus and
    /// scroll stay where they are.
    fn refresh_later() {
        let Some(ms) = document()
            .query_selector("#page #discovery[data-refresh-ms]")
            .ok()
            .flatten()
            .and_then(|el| el.get_attribute("data-refresh-ms"))
            .and_then(|v| v.parse::<i32>().ok())
        else {
            return;
        };
        if ARMED.with(|a| a.replace(true)) {
            return;
        }
        let tick = Closure::once_into_js(move || {
            ARMED.with(|a| a.set(false));
            leptos::task::spawn_local(async {
                let href = window().location().href().unwrap_or_default();
                let Ok(response) = Request::get(&href).header("accept", "text/html").send().await else { return };
                let Ok(text) = response.text().await else { return };
                let Ok(parser) = DomParser::new() else { return };
                let Ok(new_doc) = parser.parse_from_string(&text, SupportedType::TextHtml) else { return };
                let doc = document();
                let (Some(old), Some(new)) =
                    (doc.get_element_by_id("discovery"), new_doc.get_element_by_id("discovery"))
                else {
                    return;
                };
                let running = new.has_attribute("data-refresh-ms");
                if !running && doc.get_element_by_id("picker").is_none() {
                    swap(&text);
                } else {
                    old.set_outer_html(&new.outer_html());
                }
                refresh_later();
            })
        });
        let _ =
            window().set_timeout_with_callback_and_timeout_and_arguments_0(tick.unchecked_ref(), ms.clamp(500, 60_000));
    }

    fn same_origin(href: &str) -> Option<Url> {
        let url = Url::new(href).ok()?;
        (url.origin() == window().location().origin().unwrap_or_default()).then_some(url)
    }

    /// Is `href` one of Onramp's pages (same origin, not the API or a static file)?
    fn is_own_page(href: &str) -> bool {
        same_origin(href).is_some_and(|url| {
            let path = url.pathname();
            !path.starts_with("/api/") && !path.starts_with("/pkg/")
        })
    }

    fn on_click(ev: MouseEvent) {
        if ev.default_prevented()
            || ev.button() != 0
            || ev.meta_key()
            || ev.ctrl_key()
            || ev.shift_key()
            || ev.alt_key()
        {
            return;
        }
        let Some(anchor) = ev
            .target()
            .and_then(|t| t.dyn_into::<Element>().ok())
            .and_then(|el| el.closest("a[href]").ok().flatten())
            .and_then(|el| el.dyn_into::<HtmlAnchorElement>().ok())
        else {
            return;
        };
        if anchor.has_attribute("target") || anchor.has_attribute("download") || !is_own_page(&anchor.href()) {
            return;
        }
        let location = window().location();
        let same_page = anchor.pathname() == location.pathname().unwrap_or_default()
            && anchor.search() == location.search().unwrap_or_default();
        if same_page && !anchor.hash().is_empty() {
            return; // an in-page link (skip link, error summary): the browser handles it
        }
        ev.prevent_default();
        leptos::task::spawn_local(navigate(Nav::Get(anchor.href()), History::Push, None));
    }

    fn on_submit(ev: Event) {
        if ev.default_prevented() {
            return;
        }
        let Some(form) = ev.target().and_then(|t| t.dyn_into::<HtmlFormElement>().ok()) else { return };
        if !form.has_attribute("data-enhance") || same_origin(&form.action()).is_none() {
            return;
        }
        ev.prevent_default();
        if form.get_attribute("aria-busy").as_deref() == Some("true") {
            return; // already submitted: wait for the answer
        }
        let Ok(data) = FormData::new_with_form(&form) else {
            let _ = form.submit();
            return;
        };
        // The button that submitted the form says which action (a browser sends its name=value).
        if let Some(button) = ev.dyn_ref::<web_sys::SubmitEvent>().and_then(|e| e.submitter()) {
            if let (Some(name), Some(value)) = (button.get_attribute("name"), button.get_attribute("value")) {
                let _ = data.append_with_str(&name, &value);
            }
        }
        let Ok(params) = UrlSearchParams::new_with_str_sequence_sequence(&data) else {
            let _ = form.submit();
            return;
        };
        let _ = form.set_attribute("aria-busy", "true");
        if let Some(label) = form.get_attribute("data-pending-label") {
            if let Ok(Some(button)) = form.query_selector("button[type=submit]") {
                button.set_text_content(Some(&label));
                let _ = button.set_attribute("aria-disabled", "true");
            }
            announce(&label);
        }
        let nav = if form.method().eq_ignore_ascii_case("post") {
            Nav::Post(form.action(), params)
        } else {
            let mut url = form.action();
            url.push('?');
            url.push_str(&String::from(params.to_string()));
            Nav::Get(url)
        };
        leptos::task::spawn_local(navigate(nav, History::Push, Some(form)));
    }

    enum Nav {
        Get(String),
        Post(String, UrlSearchParams),
    }

    #[derive(PartialEq)]
    enum History {
        Push,
        Keep,
    }

    async fn navigate(nav: Nav, history: History, form: Option<HtmlFormElement>) {
        let (fallback_url, response) = match nav {
            Nav::Get(url) => {
                let response = Request::get(&url).header("accept", "text/html").send().await;
                (url, response)
            }
            Nav::Post(url, params) => {
                let response = match Request::post(&url).header("accept", "text/html").body(params) {
                    Ok(request) => request.send().await,
                    Err(e) => Err(e),
                };
                (url, response)
            }
        };
        let html = match response {
            Ok(r) if r.headers().get("content-type").is_some_and(|ct| ct.starts_with("text/html")) => {
                let url = r.url();
                r.text().await.ok().map(|text| (url, text))
            }
            _ => None,
        };
        let Some((url, text)) = html else {
            // Let the browser do it the way it would without JavaScript.
            match form {
                Some(form) => {
                    let _ = form.remove_attribute("aria-busy");
                    let _ = form.submit();
                }
                None => {
                    let _ = window().location().assign(&fallback_url);
                }
            }
            return;
        };
        if !swap(&text) {
            let _ = window().location().assign(&url);
            return;
        }
        if history == History::Push {
            if let Ok(h) = window().history() {
                let _ = h.push_state_with_url(&JsValue::NULL, "", Some(&url));
            }
        }
        window().scroll_to_with_x_and_y(0.0, 0.0);
        focus_new_page();
        refresh_later();
    }

    /// Replaces `#page` and the title with those of the new document. False when it has none.
    fn swap(text: &str) -> bool {
        let Ok(parser) = DomParser::new() else { return false };
        let Ok(new_doc) = parser.parse_from_string(text, SupportedType::TextHtml) else { return false };
        let doc = document();
        let (Some(new_page), Some(page)) = (new_doc.get_element_by_id("page"), doc.get_element_by_id("page")) else {
            return false;
        };
        doc.set_title(&new_doc.title());
        page.set_inner_html(&new_page.inner_html());
        true
    }

    fn focus_new_page() {
        let doc = document();
        let target = doc
            .query_selector("#page .error-summary")
            .ok()
            .flatten()
            .or_else(|| doc.query_selector("#page h1").ok().flatten());
        if let Some(el) = target.and_then(|t| t.dyn_into::<HtmlElement>().ok()) {
            let _ = el.focus();
        }
        announce(&doc.title());
    }

    fn announce(text: &str) {
        if let Some(status) = document().get_element_by_id("page-status") {
            status.set_text_content(Some(text));
        }
    }
}
