// Passkey ceremonies: a button with data-passkey="register" or "authenticate", data-begin and data-complete URLs,
// data-csrf and an optional data-name-input (the id of the name field). The server answers with JSON; errors carry
// a "detail" shown in the element named by data-status (aria-live).
(function () {
  "use strict";

  function toBytes(value) {
    const base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "===".slice((base64.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  }

  function toText(buffer) {
    if (!buffer) return null;
    let binary = "";
    new Uint8Array(buffer).forEach((b) => { binary += String.fromCharCode(b); });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(json) {
    const options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    options.excludeCredentials = (json.excludeCredentials || []).map((c) => Object.assign({}, c, { id: toBytes(c.id) }));
    return options;
  }

  function requestOptions(json) {
    const options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.allowCredentials = (json.allowCredentials || []).map((c) => Object.assign({}, c, { id: toBytes(c.id) }));
    return options;
  }

  function credentialJson(credential) {
    const response = credential.response;
    const json = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toText(response.clientDataJSON) },
    };
    if (response.attestationObject) {
      json.response.attestationObject = toText(response.attestationObject);
      json.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      json.response.authenticatorData = toText(response.authenticatorData);
      json.response.signature = toText(response.signature);
      json.response.userHandle = toText(response.userHandle);
    }
    return json;
  }

  async function post(url, csrf, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (!response.ok) throw new Error(data.detail || "The server refused the request (HTTP " + response.status + ").");
    return data;
  }

  function withNext(url, next) {
    if (!next) return url;
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "next=" + encodeURIComponent(next);
  }

  async function run(button) {
    const status = document.getElementById(button.dataset.status);
    const say = (text, failed) => {
      if (!status) return;
      status.textContent = text;
      status.classList.toggle("error", Boolean(failed));
    };
    const next = button.dataset.next || new URLSearchParams(window.location.search).get("next") || "";
    const body = {};
    if (button.dataset.nameInput) {
      const input = document.getElementById(button.dataset.nameInput);
      body.name = input ? input.value : "";
    }
    button.disabled = true;
    say("Waiting for your passkey…", false);
    try {
      const options = await post(button.dataset.begin, button.dataset.csrf, body);
      let credential;
      if (button.dataset.passkey === "register") {
        credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
      } else {
        credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
      }
      if (!credential) throw new Error("No passkey was chosen.");
      const result = await post(withNext(button.dataset.complete, next), button.dataset.csrf, credentialJson(credential));
      say("Done.", false);
      window.location.assign(result.redirect_url || window.location.href);
    } catch (error) {
      const cancelled = error && (error.name === "NotAllowedError" || error.name === "AbortError");
      say(cancelled ? "The passkey request was cancelled or timed out; try again." : (error.message || String(error)), true);
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const supported = Boolean(window.PublicKeyCredential && navigator.credentials);
    document.querySelectorAll("[data-passkey]").forEach((button) => {
      if (!supported) {
        button.disabled = true;
        const status = document.getElementById(button.dataset.status);
        if (status) status.textContent = "This browser does not support passkeys.";
        return;
      }
      button.addEventListener("click", (event) => {
        event.preventDefault();
        run(button);
      });
    });
  });
})();
