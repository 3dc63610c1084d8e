//! The WASM entry point: hydrates the islands of a server-rendered Onramp page. Nothing else lives here.

// Link the `app` crate so that its `#[island]` components are exported to the page.
extern crate app;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
