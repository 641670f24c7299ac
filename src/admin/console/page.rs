//! The console's one page, rendered on the server (maud): a sign-in form, or the screens
//! the session's role may use. The script fills in the figures and answers from the JSON
//! API; every screen's frame, form and label is here.

use super::session::Session;
use crate::admin::auth::Role;
use maud::{DOCTYPE, Markup, html};

/// Seconds between two polls of `GET /v1/now`.
pub const REFRESH_S: u32 = 3;

fn head(title: &str, session: Option<&Session>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) }
            @if let Some(s) = session {
                meta name="csrf-token" content=(s.csrf);
            }
            link rel="stylesheet" href="/console/console.css";
            script src="/console/console.js" defer {}
        }
    }
}

fn sign_in() -> Markup {
    html! {
        main.narrow {
            section.card #sign-in {
                h2 { "Sign in" }
                p.hint { "Enter your checkpoint or official token. It is asked once for this browser session." }
                form #login autocomplete="off" {
                    label for="token" { "Token" }
                    input #token type="password" name="token" required autocomplete="current-password";
                    button type="submit" { "Sign in" }
                }
                p #login-result .result role="alert" {}
            }
        }
    }
}

fn now() -> Markup {
    html! {
        section.screen #now data-refresh=(REFRESH_S) {
            h2 { "Now" span #now-at .muted {} }
            div.grid {
                figure.card {
                    figcaption { "MOs per second (the last 10 minutes)" }
                    svg #mos-chart .chart viewBox="0 0 600 160" preserveAspectRatio="none" role="img" aria-label="MOs per second" {}
                    p.legend { span #mos-now {} }
                }
                figure.card {
                    figcaption { "Reply time (MO to delivered reply), ms" }
                    svg #reply-chart .chart viewBox="0 0 600 160" preserveAspectRatio="none" role="img" aria-label="Reply time p50 and p99" {}
                    p.legend { span.key.p50 { "p50" } " " span.key.p99 { "p99" } " " span #reply-now {} }
                }
                div.card {
                    h3 { "Today by code" }
                    table #outcomes { thead { tr { th { "code" } th { "granted" } th { "active" } th { "denied" } } } tbody {} }
                    p #mos-today .muted {}
                }
                div.card {
                    h3 { "Bad texts" span #invalid-share .badge {} }
                    table #invalid { thead { tr { th { "reason" } th { "texts" } th { "share" } } } tbody {} }
                }
                div.card {
                    h3 { "Binds and reply queues" }
                    table #binds { thead { tr { th { "operator" } th { "binds (tx/rx/trx)" } th { "queue" } } } tbody {} }
                    table #connectors { thead { tr { th { "connector" } th { "state" } th { "queue" } } } tbody {} }
                }
                div.card {
                    h3 { "Health" }
                    dl #health {
                        dt { "SMPP" } dd #smpp {}
                        dt { "Store" } dd #store {}
                        dt { "Rules version" } dd #rules-version {}
                    }
                }
            }
        }
    }
}

fn check() -> Markup {
    html! {
        section.screen #check {
            h2 { "Check a permit" }
            form #check-form .card autocomplete="off" {
                label for="check-id" { "Permit number" }
                input #check-id name="permit_id" required placeholder="K7QM-4RTX" autocapitalize="characters" spellcheck="false";
                label for="check-document" { "Document (optional)" }
                input #check-document name="document" placeholder="AZE 11111111" autocapitalize="characters" spellcheck="false";
                button type="submit" { "Check" }
            }
            div #verdict .verdict aria-live="polite" {
                p.status {}
                p.detail {}
            }
        }
    }
}

fn actions() -> Markup {
    html! {
        section.screen #actions {
            h2 { "Officials' actions" }
            div.grid {
                form #revoke-form .card autocomplete="off" {
                    h3 { "Revoke a permit" }
                    label for="revoke-id" { "Permit number" }
                    input #revoke-id required placeholder="K7QM-4RTX";
                    label for="revoke-reason" { "Reason" }
                    input #revoke-reason required maxlength="128";
                    button.danger type="submit" { "Revoke" }
                    p #revoke-result .result role="alert" {}
                }
                form #block-form .card autocomplete="off" {
                    h3 { "Block or unblock a document" }
                    label for="block-document" { "Document" }
                    input #block-document required placeholder="AZE 11111111";
                    label for="block-codes" { "Codes (empty: all)" }
                    input #block-codes placeholder="3";
                    label for="block-until" { "Until (empty: for good)" }
                    input #block-until placeholder="2020-04-20T00:00:00+04:00";
                    label for="block-reason" { "Reason" }
                    input #block-reason maxlength="128";
                    div.row {
                        button.danger type="submit" { "Block" }
                        button #unblock type="button" { "Unblock" }
                    }
                    p #block-result .result role="alert" {}
                }
            }
        }
    }
}

fn rules(text: &str, version: &str) -> Markup {
    html! {
        section.screen #rules {
            h2 { "Rules" span.muted { "in force: " span #rules-base { (version) } } }
            div.card {
                label for="rules-text" { "Rules file" }
                textarea #rules-text spellcheck="false" rows="24" { (text) }
                div.row {
                    button #rules-check type="button" { "Check" }
                    button #rules-apply .danger type="button" disabled { "Apply these rules" }
                }
                div #rules-result .result role="alert" {}
            }
        }
    }
}

/// The page for `session` (the sign-in form without one); an official also gets the rules
/// file in force (`text`, `version`) to edit.
pub fn render(session: Option<&Session>, rules_text: &str, version: &str) -> Markup {
    let role = session.map(|s| s.caller.role);
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("icaze console", session))
            body data-role=(role.map_or("", Role::name)) {
                header.top {
                    h1 { "icaze" span.muted { " console" } }
                    @if let Some(s) = session {
                        nav {
                            @if role == Some(Role::Official) {
                                a href="#now" { "Now" }
                            }
                            a href="#check" { "Check" }
                            @if role == Some(Role::Official) {
                                a href="#actions" { "Actions" }
                                a href="#rules" { "Rules" }
                            }
                        }
                        span #who .muted { (s.caller.to_string()) }
                        button #sign-out type="button" { "Sign out" }
                    }
                }
                @match role {
                    None => { (sign_in()) }
                    Some(Role::Checkpoint) => { main { (check()) } }
                    Some(Role::Official) => {
                        main { (now()) (check()) (actions()) (rules(rules_text, version)) }
                    }
                }
            }
        }
    }
}
