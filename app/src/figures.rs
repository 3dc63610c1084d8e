//! A drawing for every step that happens in GitLab (5–11): a schematic of the GitLab screen the
//! reader is on, in today's layout, with the control to use highlighted and numbered markers that
//! the caption names. Better than a screenshot: the address bar shows the reader's own GitLab, the
//! colours follow the page's light or dark scheme (CSS classes, no inline styles), and no GitLab
//! redesign of one pixel makes it stale. Pure: a step and an address in, SVG text out, every piece
//! of text escaped.

/// The address shown when the reader's GitLab is not known (or not confirmed) yet.
pub const EXAMPLE_BASE: &str = "https://gitlab.example.com";

/// One step's figure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figure {
    /// What the picture shows, in a sentence (the SVG's `<title>`).
    pub title: &'static str,
    /// What a reader who cannot see it needs (the SVG's `<desc>`).
    pub description: String,
    /// The numbered markers, in order: marker 1 is `markers[0]`.
    pub markers: Vec<&'static str>,
    /// The whole `<svg>` element.
    pub svg: String,
}

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The figure of step `step` for a GitLab at `base` (its address as Onramp shows it, no trailing
/// slash), or `None` for steps that happen in Onramp.
pub fn figure(step: u8, base: Option<&str>) -> Option<Figure> {
    let base = base.unwrap_or(EXAMPLE_BASE).trim_end_matches('/');
    let (title, markers, height, url, body): (&str, Vec<&str>, u32, String, String) = match step {
        5 => (
            "GitLab's sign-in page",
            vec!["Username or primary email", "Password", "Sign in"],
            300,
            format!("{base}/users/sign_in"),
            sign_in(),
        ),
        6 => (
            "GitLab with the avatar menu open",
            vec!["Your avatar", "Edit profile"],
            300,
            format!("{base}/"),
            avatar_menu(Some("Edit profile")),
        ),
        7 => (
            "GitLab's personal access token page, with the new token form",
            vec!["Personal access tokens", "Add new token", "Token name", "Expiration date"],
            320,
            format!("{base}/-/user_settings/personal_access_tokens"),
            token_form(),
        ),
        8 => (
            "The scopes of GitLab's new token form",
            vec!["api", "read_api", "read_user", "read_repository", "Create token"],
            320,
            format!("{base}/-/user_settings/personal_access_tokens"),
            scopes(),
        ),
        9 => (
            "GitLab's page right after creating a token",
            vec!["Your new token, hidden", "Copy token"],
            260,
            format!("{base}/-/user_settings/personal_access_tokens"),
            created(),
        ),
        10 => (
            "GitLab with the avatar menu open, to reach your profile",
            vec!["Your avatar", "Your name and @username: your profile"],
            300,
            format!("{base}/"),
            avatar_menu(None),
        ),
        11 => {
            let (url, body) = profile(base);
            (
                "Your GitLab profile page and its address",
                vec!["Your profile's address", "Your user name: leave it out", "The base URL: everything before it"],
                300,
                url,
                body,
            )
        }
        _ => return None,
    };
    let description = format!(
        "A drawing of {} at {}. {}",
        lowercase_first(title),
        url,
        markers.iter().enumerate().map(|(i, m)| format!("Marker {}: {m}.", i + 1)).collect::<Vec<_>>().join(" ")
    );
    let svg = format!(
        r#"<svg class="figure-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 {height}" role="img" aria-labelledby="figure-title figure-desc"><title id="figure-title">{}</title><desc id="figure-desc">{}</desc>{}{}</svg>"#,
        escape(title),
        escape(&description),
        chrome(height, &address_markup(step, base, &url), step == 11),
        body
    );
    Some(Figure { title, description, markers, svg })
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What the address bar says, as markup: on step 11 the base URL and the user name apart (the
/// name struck through).
fn address_markup(step: u8, base: &str, url: &str) -> String {
    match (step, url.strip_prefix(base)) {
        (11, Some(name)) => {
            format!(r#"<tspan class="f-base">{}</tspan><tspan class="f-name">{}</tspan>"#, escape(base), escape(name))
        }
        _ => escape(url),
    }
}

/// The browser window and its address bar, which shows `address` (markup, clipped to the bar),
/// highlighted when the address is what the step is about.
fn chrome(height: u32, address: &str, focus: bool) -> String {
    let bar = if focus { "f-address f-focus" } else { "f-address" };
    format!(
        r#"<rect class="f-window" x="0.5" y="0.5" width="399" height="{h}" rx="8"/><path class="f-bar" d="M0.5 36V8.5a8 8 0 0 1 8-8h383a8 8 0 0 1 8 8V36z"/><circle class="f-dot" cx="14" cy="18" r="4"/><circle class="f-dot" cx="27" cy="18" r="4"/><circle class="f-dot" cx="40" cy="18" r="4"/><rect class="{bar}" x="54" y="7" width="338" height="22" rx="11"/><svg x="64" y="7" width="320" height="22"><text class="f-url" x="0" y="16">{u}</text></svg>"#,
        h = height - 1,
        u = address
    )
}

/// A numbered marker centred at (x, y).
fn marker(n: u8, x: i32, y: i32) -> String {
    format!(
        r#"<g class="f-marker"><circle cx="{x}" cy="{y}" r="10"/><text x="{x}" y="{ty}" text-anchor="middle">{n}</text></g>"#,
        ty = y + 5
    )
}

/// A text line.
fn text(class: &str, x: i32, y: i32, content: &str) -> String {
    format!(r#"<text class="{class}" x="{x}" y="{y}">{}</text>"#, escape(content))
}

/// An input field with a label above it.
fn field(x: i32, y: i32, width: i32, label: &str, value: &str, focus: bool) -> String {
    let class = if focus { "f-input f-focus" } else { "f-input" };
    format!(
        r#"{}<rect class="{class}" x="{x}" y="{}" width="{width}" height="24" rx="3"/>{}"#,
        text("f-label", x, y, label),
        y + 6,
        text("f-value", x + 8, y + 23, value)
    )
}

fn button(x: i32, y: i32, width: i32, label: &str, primary: bool, focus: bool) -> String {
    let class = match (primary, focus) {
        (true, true) => "f-button-primary f-focus",
        (true, false) => "f-button-primary",
        (false, true) => "f-button f-focus",
        (false, false) => "f-button",
    };
    let text_class = if primary { "f-button-text-primary" } else { "f-button-text" };
    format!(
        r#"<rect class="{class}" x="{x}" y="{y}" width="{width}" height="26" rx="4"/><text class="{text_class}" x="{}" y="{}" text-anchor="middle">{}</text>"#,
        x + width / 2,
        y + 18,
        escape(label)
    )
}

fn sign_in() -> String {
    [
        text("f-heading", 130, 70, "Sign in to GitLab"),
        field(110, 92, 200, "Username or primary email", "jdoe", true),
        marker(1, 96, 116),
        field(110, 146, 200, "Password", "••••••••", true),
        marker(2, 96, 170),
        text("f-small", 110, 192, "Forgot your password?"),
        button(110, 206, 200, "Sign in", true, true),
        marker(3, 96, 219),
        text("f-small", 124, 258, "or sign in with your company's SSO"),
    ]
    .concat()
}

/// The left sidebar with the avatar at its top, and the avatar's menu; `highlight` names the menu
/// item to use (`None`: the name and user name line).
fn avatar_menu(highlight: Option<&str>) -> String {
    let mut out = vec![
        r#"<rect class="f-sidebar" x="1" y="36" width="110" height="263"/>"#.to_owned(),
        r#"<circle class="f-avatar f-focus" cx="24" cy="58" r="12"/>"#.to_owned(),
        marker(1, 50, 58),
        text("f-small", 12, 96, "Your work"),
        text("f-small", 12, 118, "Projects"),
        text("f-small", 12, 140, "Groups"),
        text("f-small", 12, 162, "Merge requests"),
        r#"<rect class="f-menu" x="66" y="74" width="190" height="190" rx="6"/>"#.to_owned(),
    ];
    let name_class = if highlight.is_none() { "f-menu-item f-focus" } else { "f-menu-item" };
    out.push(format!(r#"<rect class="{name_class}" x="72" y="80" width="178" height="40" rx="4"/>"#));
    out.push(text("f-strong", 82, 97, "Jane Doe"));
    out.push(text("f-small", 82, 114, "@jdoe"));
    let mut y = 126;
    for item in ["Set status", "Edit profile", "Preferences", "Sign out"] {
        if item == "Sign out" {
            out.push(format!(r#"<line class="f-rule" x1="72" y1="{y}" x2="250" y2="{y}"/>"#));
            y += 6;
        }
        if highlight == Some(item) {
            out.push(format!(r#"<rect class="f-menu-item f-focus" x="72" y="{y}" width="178" height="28" rx="4"/>"#));
            out.push(marker(2, 270, y + 14));
        }
        out.push(text("f-text", 82, y + 19, item));
        y += 30;
    }
    if highlight.is_none() {
        out.push(marker(2, 270, 100));
    }
    out.concat()
}

/// The user settings sidebar and the top of the token page with its form.
fn token_form() -> String {
    [
        r#"<rect class="f-sidebar" x="1" y="36" width="118" height="283"/>"#.to_owned(),
        text("f-strong", 10, 58, "User settings"),
        text("f-small", 10, 82, "Profile"),
        text("f-small", 10, 104, "Access"),
        r#"<rect class="f-menu-item f-focus" x="6" y="112" width="108" height="38" rx="3"/>"#.to_owned(),
        text("f-small", 14, 128, "Personal access"),
        text("f-small", 14, 143, "tokens"),
        marker(1, 126, 131),
        text("f-small", 10, 172, "Notifications"),
        text("f-heading", 146, 62, "Personal access tokens"),
        button(270, 72, 118, "Add new token", true, true),
        marker(2, 256, 85),
        r#"<rect class="f-panel" x="140" y="108" width="252" height="200" rx="4"/>"#.to_owned(),
        field(152, 128, 228, "Token name", "Onramp", true),
        marker(3, 386, 152),
        field(152, 180, 228, "Description (optional)", "Lets Onramp read your projects", false),
        field(152, 232, 140, "Expiration date", "YYYY-MM-DD", true),
        marker(4, 306, 256),
        text("f-small", 152, 296, "Select scopes ↓"),
    ]
    .concat()
}

/// The scope checkboxes, the four Onramp needs ticked, and the create button.
fn scopes() -> String {
    let mut out = vec![
        r#"<rect class="f-panel" x="12" y="46" width="376" height="262" rx="4"/>"#.to_owned(),
        text("f-strong", 24, 68, "Select scopes"),
    ];
    let mut y = 80;
    let mut n = 0;
    for scope in ["api", "read_api", "read_user", "create_runner", "self_rotate", "read_repository", "write_repository"]
    {
        let ticked = matches!(scope, "api" | "read_api" | "read_user" | "read_repository");
        if ticked {
            n += 1;
            out.push(format!(
                r#"<rect class="f-check f-checked f-focus" x="24" y="{y}" width="16" height="16" rx="2"/>"#
            ));
            out.push(format!(r#"<path class="f-tick" d="M27 {}l4 4l7 -8"/>"#, y + 8));
            out.push(marker(n, 210, y + 8));
        } else {
            out.push(format!(r#"<rect class="f-check" x="24" y="{y}" width="16" height="16" rx="2"/>"#));
        }
        out.push(text(if ticked { "f-strong" } else { "f-text" }, 50, y + 13, scope));
        y += 26;
    }
    out.push(button(24, 268, 120, "Create token", true, true));
    out.push(marker(5, 160, 281));
    out.concat()
}

/// The banner with the new token: hidden, with reveal and copy buttons.
fn created() -> String {
    [
        text("f-text", 16, 62, "Your new personal access token has been created."),
        r#"<rect class="f-success" x="12" y="76" width="376" height="128" rx="4"/>"#.to_owned(),
        text("f-strong", 24, 100, "Your new personal access token"),
        r#"<rect class="f-input" x="24" y="112" width="212" height="26" rx="3"/>"#.to_owned(),
        text("f-value", 34, 130, "••••••••••••••••••••"),
        marker(1, 130, 160),
        button(244, 112, 56, "Show", false, false),
        button(308, 112, 68, "Copy", false, true),
        marker(2, 342, 160),
        text("f-small", 24, 192, "Make sure you save it - you won't be able to access it again."),
        text("f-small", 16, 232, "Token name · Scopes · Created · Expires"),
    ]
    .concat()
}

/// The profile page, its address with the user name struck out and the base URL marked.
fn profile(base: &str) -> (String, String) {
    let url = format!("{base}/jdoe");
    // Where the user name starts in the address bar: its 12 px text is about 6 user units a
    // character wide; an estimate is enough to place a marker below it.
    let base_chars = i32::try_from(base.chars().count()).unwrap_or(i32::MAX);
    let name_x = (64 + base_chars.saturating_mul(6)).min(340);
    let body = [
        marker(1, 372, 48),
        marker(2, name_x + 15, 48),
        marker(3, (64 + name_x) / 2, 48),
        r#"<circle class="f-avatar" cx="60" cy="110" r="30"/>"#.to_owned(),
        text("f-heading", 104, 104, "Jane Doe"),
        text("f-text", 104, 126, "@jdoe"),
        button(290, 90, 96, "Edit profile", false, false),
        r#"<rect class="f-panel" x="12" y="160" width="376" height="124" rx="4"/>"#.to_owned(),
        text("f-small", 24, 184, "Overview · Activity · Groups · Personal projects"),
        text("f-small", 24, 212, "Member since …"),
    ]
    .concat();
    (url, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gitlab_step_has_a_figure_with_markers_and_the_readers_address() {
        for step in 5..=11 {
            let f = figure(step, Some("https://git.acme.io/gitlab")).unwrap();
            assert!(f.svg.starts_with("<svg") && f.svg.ends_with("</svg>"), "step {step}");
            assert!(f.svg.contains(r#"role="img""#) && f.svg.contains("<title id=\"figure-title\">"), "step {step}");
            assert!(f.svg.contains("https://git.acme.io/gitlab"), "step {step}: the reader's GitLab");
            assert!(!f.markers.is_empty());
            for n in 1..=f.markers.len() {
                assert!(f.svg.contains(&format!(">{n}</text></g>")), "step {step}: marker {n} drawn");
                assert!(f.description.contains(&format!("Marker {n}: {}.", f.markers[n - 1])), "step {step}");
            }
            let drawn = f.svg.matches(r#"<g class="f-marker">"#).count();
            assert_eq!(drawn, f.markers.len(), "step {step}: every marker drawn once and named");
            assert!(!f.svg.contains("style="), "step {step}: no inline styles (CSP)");
            assert!(!f.description.to_lowercase().contains("screenshot"));
        }
        assert!(figure(4, None).is_none() && figure(12, None).is_none());
        assert!(figure(7, None).unwrap().svg.contains(EXAMPLE_BASE));
    }

    #[test]
    fn the_pictures_say_what_the_steps_say() {
        let f8 = figure(8, None).unwrap();
        assert_eq!(f8.markers[..4], ["api", "read_api", "read_user", "read_repository"]);
        assert_eq!(f8.svg.matches("f-checked").count(), 4, "four scopes ticked");
        let f9 = figure(9, None).unwrap();
        assert!(f9.svg.contains("Copy") && f9.markers.contains(&"Copy token"));
        let f11 = figure(11, Some("https://gitlab.example.com")).unwrap();
        assert!(f11.svg.contains(
            r#"<tspan class="f-base">https://gitlab.example.com</tspan><tspan class="f-name">/jdoe</tspan>"#
        ));
        assert_eq!(figure(6, None).unwrap().markers, ["Your avatar", "Edit profile"]);
    }

    #[test]
    fn text_is_escaped_everywhere() {
        let hostile = r#"https://x.test/"><script>alert(1)</script>&'"#;
        for step in 5..=11 {
            let f = figure(step, Some(hostile)).unwrap();
            assert!(!f.svg.contains("<script>"), "step {step}");
            assert!(f.svg.contains("&lt;script&gt;") && f.svg.contains("&amp;"), "step {step}");
        }
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
        // Long addresses and non-ASCII text never panic (no byte slicing).
        let long = format!("https://{}.example/€€€", "a".repeat(500));
        assert!(figure(11, Some(&long)).is_some());
    }
}
