// Security keys (WebAuthn) on the account pages: a form with data-webauthn="create" (register a key)
// or "get" (log in with a key) and data-options (the server's JSON options) runs the browser's
// WebAuthn call when submitted, puts the answer in its empty hidden field and then submits.
(function () {
  "use strict";

  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var bin = atob(b64), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (d) { return { type: d.type, id: toBytes(d.id), transports: d.transports }; });
  }

  function create(options) {
    options.challenge = toBytes(options.challenge);
    options.user.id = toBytes(options.user.id);
    options.excludeCredentials = descriptors(options.excludeCredentials);
    return navigator.credentials.create({ publicKey: options }).then(function (cred) {
      return {
        id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
        response: {
          clientDataJSON: toB64url(cred.response.clientDataJSON),
          attestationObject: toB64url(cred.response.attestationObject),
          transports: cred.response.getTransports ? cred.response.getTransports() : []
        },
        clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
      };
    });
  }

  function get(options) {
    options.challenge = toBytes(options.challenge);
    options.allowCredentials = descriptors(options.allowCredentials);
    return navigator.credentials.get({ publicKey: options }).then(function (cred) {
      return {
        id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
        response: {
          clientDataJSON: toB64url(cred.response.clientDataJSON),
          authenticatorData: toB64url(cred.response.authenticatorData),
          signature: toB64url(cred.response.signature),
          userHandle: cred.response.userHandle ? toB64url(cred.response.userHandle) : null
        },
        clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
      };
    });
  }

  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    var kind = form.getAttribute("data-webauthn");
    var target = form.querySelector(kind === "create" ? "input[name=credential]" : "input[name=assertion]");
    var errorBox = form.querySelector("[data-webauthn-error]");
    var button = form.querySelector("button[type=submit]");
    if (!window.PublicKeyCredential) {
      if (errorBox) { errorBox.textContent = "This browser does not support security keys."; errorBox.hidden = false; }
      if (button) button.disabled = true;
      return;
    }
    form.addEventListener("submit", function (event) {
      if (target.value) return; // the answer is in: let the form go
      event.preventDefault();
      if (errorBox) errorBox.hidden = true;
      if (button) button.disabled = true;
      var options = JSON.parse(form.getAttribute("data-options"));
      (kind === "create" ? create(options) : get(options)).then(function (answer) {
        target.value = JSON.stringify(answer);
        form.submit();
      }, function (err) {
        if (button) button.disabled = false;
        if (errorBox) {
          errorBox.textContent = "The security key did not answer (" + (err && err.name ? err.name : "error") + "). Try again.";
          errorBox.hidden = false;
        }
      });
    });
  });
})();
