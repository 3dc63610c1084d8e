//! The WASM entry point: hydrates the islands of a server-rendered Onramp page. Nothing else lives here.

// Link the `app` crate so that its `#[island]` components are exported to the page.
extern crate app;

// No panic hook: the island is built to abort on a panic without formatting a message (see
// scripts/build.sh), and a page whose island failed still works, as it does without JavaScript.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    leptos::mount::hydrate_islands();
}
