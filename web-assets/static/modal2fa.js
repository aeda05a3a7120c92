/*
 * modal2fa.js: the client side of the modal protocol (docs/HTTP.md).
 *
 * Needs htmx 2 and Bootstrap 5's bundle, loaded before this file. No inline scripts, no
 * eval: it holds under `script-src 'self'`.
 *
 * - [data-modal2fa-open="URL"] (link or button) opens URL in a Bootstrap modal; modals stack.
 * - The fragment's root may carry data-modal2fa-size="sm|lg|xl" and
 *   data-modal2fa-cancel="URL" (POSTed with the modal's csrf_token when the user dismisses it).
 * - HX-Trigger commands: modal2fa:close, modal2fa:open {url}, modal2fa:replace {url}.
 * - Every htmx request carries X-CSRF-Token from <meta name="csrf-token">.
 * - Optional texts on <html>: data-modal2fa-loading-text, data-modal2fa-error-text.
 * - Passkeys (with @simplewebauthn/browser loaded first): [data-modal2fa-passkey="sign-in"
 *   |"register"|"passwordless"] POSTs its data-modal2fa-passkey-options URL for the
 *   ceremony's options, runs the browser's prompt, and submits its
 *   [data-modal2fa-passkey-form] with the answer in the hidden `response` field. The
 *   sign-in block (rendered `hidden`) is shown and its prompt starts when its modal
 *   settles; a passwordless block (rendered
 *   `hidden`) is shown then where the browser has WebAuthn, and offers its passkeys to
 *   the browser's autofill where it can; a
 *   [data-modal2fa-passkey-start] button starts any of them with the browser's prompt.
 *
 * - [data-modal2fa-copy="ID"] (rendered `hidden`) is shown where the browser has a
 *   clipboard and copies the text of element ID, one line per item.
 *
 * Only modals created here are touched: a page rendered without JS (a modal shown inline)
 * is left alone.
 */
(function () {
  'use strict';

  var htmx = window.htmx;
  var bootstrap = window.bootstrap;
  if (!htmx || !bootstrap || !bootstrap.Modal) {
    if (window.console) {
      window.console.error('modal2fa: load htmx and bootstrap.bundle before modal2fa.js');
    }
    return;
  }

  // htmx would insert an inline <style> for its indicators, which a strict CSP refuses:
  // modal2fa.css carries the same rules.
  htmx.config.includeIndicatorStyles = false;

  // The user menu is a <details> element (it works without JavaScript). With JavaScript it
  // behaves like a dropdown: choosing an entry, clicking elsewhere or Escape closes it.
  function closeMenus(except) {
    document.querySelectorAll('details.modal2fa-dropdown[open]').forEach(function (d) {
      if (d !== except) {
        d.removeAttribute('open');
      }
    });
  }
  document.addEventListener('click', function (event) {
    var target = event.target instanceof Element ? event.target : null;
    var menu = target && target.closest('details.modal2fa-dropdown');
    if (target && target.closest('details.modal2fa-dropdown .dropdown-item')) {
      closeMenus(null);
    } else {
      closeMenus(menu);
    }
  });
  document.addEventListener('keydown', function (event) {
    if (event.key === 'Escape') {
      closeMenus(null);
    }
  });

  // Never carry inline style attributes across swaps: `style-src 'self'` refuses them.
  htmx.config.attributesToSettle = ['class', 'width', 'height'];

  var CONTENT = '[data-modal2fa-content]';
  var SIZES = ['sm', 'lg', 'xl'];
  var STEP = 20; // z-index added per stacked modal

  var stack = []; // modals created here, bottom first
  var closing = new WeakSet(); // modals being hidden (by a command or by the user)
  var shown = new WeakSet(); // modals whose show transition has finished
  var returnFocus = new WeakMap(); // modal -> element focused before it opened

  function text(name, fallback) {
    return document.documentElement.getAttribute(name) || fallback;
  }

  /** The runtime modal that contains `node`, or null. */
  function modalOf(node) {
    var modal = node && node.closest ? node.closest('.modal') : null;
    return modal && stack.indexOf(modal) !== -1 ? modal : null;
  }

  function topmost() {
    for (var i = stack.length - 1; i >= 0; i--) {
      if (!closing.has(stack[i])) {
        return stack[i];
      }
    }
    return null;
  }

  /** The modal a command is for: the one the request came from, else the topmost. */
  function commandTarget(evt) {
    return modalOf(evt.target) || topmost();
  }

  function contentOf(modal) {
    return modal.querySelector(CONTENT);
  }

  /** An attribute of the fragment's root element (a direct child of the content). */
  function rootAttr(content, name) {
    var root = content.querySelector(':scope > [' + name + ']');
    return root ? root.getAttribute(name) : null;
  }

  function el(tag, className) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    return node;
  }

  function spinner() {
    var body = el('div', 'modal-body text-center py-5');
    var spin = el('div', 'spinner-border text-secondary');
    spin.setAttribute('role', 'status');
    var label = el('span', 'visually-hidden');
    label.textContent = text('data-modal2fa-loading-text', 'Loading…');
    spin.appendChild(label);
    body.appendChild(spin);
    return body;
  }

  /** Focuses the fragment's [autofocus] element; else, when `orModal`, the modal itself. */
  function focusFirst(modal, orModal) {
    var input = contentOf(modal).querySelector('[autofocus]');
    if (input) {
      input.focus();
    } else if (orModal) {
      modal.focus();
    }
  }

  /** Applies what the current fragment asks for: size, label, focus. */
  function settle(modal) {
    var content = contentOf(modal);
    var size = rootAttr(content, 'data-modal2fa-size');
    var dialog = modal.querySelector('.modal-dialog');
    SIZES.forEach(function (s) {
      dialog.classList.toggle('modal-' + s, s === size);
    });
    var title = content.querySelector('.modal-title[id]');
    if (title) {
      modal.setAttribute('aria-labelledby', title.id);
      modal.removeAttribute('aria-label');
    } else {
      modal.removeAttribute('aria-labelledby');
    }
    focusFirst(modal);
  }

  function load(modal, url) {
    htmx.ajax('GET', url, { target: contentOf(modal), swap: 'innerHTML' });
  }

  function hide(modal) {
    closing.add(modal);
    // Bootstrap ignores hide() during the show transition: shown.bs.modal retries.
    if (shown.has(modal)) {
      bootstrap.Modal.getOrCreateInstance(modal).hide();
    }
  }

  function cancel(modal) {
    var content = contentOf(modal);
    var url = rootAttr(content, 'data-modal2fa-cancel');
    if (!url) {
      return;
    }
    var token = content.querySelector('input[name="csrf_token"]');
    htmx.ajax('POST', url, { swap: 'none', values: token ? { csrf_token: token.value } : {} });
  }

  function open(url) {
    var modal = el('div', 'modal fade');
    modal.tabIndex = -1;
    modal.setAttribute('aria-hidden', 'true');
    // A dialog always has a name: the loading text until the fragment's title takes over
    // (settle), so assistive technology — and axe — never meet a nameless dialog.
    modal.setAttribute('aria-label', text('data-modal2fa-loading-text', 'Loading…'));
    // Keep modal content (secrets, recovery codes) out of htmx's localStorage history.
    modal.setAttribute('hx-history', 'false');
    var dialog = el('div', 'modal-dialog modal-dialog-centered');
    var content = el('div', 'modal-content');
    content.setAttribute('data-modal2fa-content', '');
    content.appendChild(spinner());
    dialog.appendChild(content);
    modal.appendChild(dialog);

    var level = stack.length;
    returnFocus.set(modal, document.activeElement);
    stack.push(modal);
    document.body.appendChild(modal);
    if (level > 0) {
      var base = parseInt(window.getComputedStyle(modal).zIndex, 10) || 1055;
      modal.style.zIndex = String(base + STEP * level);
    }

    modal.addEventListener('shown.bs.modal', function (evt) {
      if (evt.target !== modal) {
        return;
      }
      shown.add(modal);
      if (closing.has(modal)) {
        bootstrap.Modal.getOrCreateInstance(modal).hide();
      } else {
        focusFirst(modal);
      }
    });
    modal.addEventListener('hide.bs.modal', function (evt) {
      if (evt.target !== modal || closing.has(modal)) {
        return; // hidden by a command: no cancel
      }
      closing.add(modal);
      cancel(modal); // dismissed by the user: close button, Escape or backdrop
    });
    modal.addEventListener('hidden.bs.modal', function (evt) {
      if (evt.target !== modal) {
        return;
      }
      stack.splice(stack.indexOf(modal), 1);
      bootstrap.Modal.getOrCreateInstance(modal).dispose();
      modal.remove();
      var next = topmost();
      if (next) {
        // Bootstrap forgets that another modal is still open.
        document.body.classList.add('modal-open');
        focusFirst(next, true);
      } else {
        var back = returnFocus.get(modal);
        if (back && back.isConnected && back.focus) {
          back.focus();
        }
      }
    });

    htmx.process(modal);
    load(modal, url);
    bootstrap.Modal.getOrCreateInstance(modal).show();

    if (level > 0) {
      var backdrops = document.querySelectorAll('.modal-backdrop');
      var backdrop = backdrops[backdrops.length - 1];
      if (backdrop) {
        var under = parseInt(window.getComputedStyle(backdrop).zIndex, 10) || 1050;
        backdrop.style.zIndex = String(under + STEP * level);
      }
    }
    return modal;
  }

  function showError(content) {
    var old = content.querySelector('.modal2fa-error');
    if (old) {
      old.remove();
    }
    var alert = el('div', 'alert alert-danger modal2fa-error');
    alert.setAttribute('role', 'alert');
    alert.textContent = text('data-modal2fa-error-text', 'Something went wrong. Please try again.');
    var body = content.querySelector('.modal-body');
    if (body && !body.querySelector('.spinner-border')) {
      body.insertBefore(alert, body.firstChild);
      return;
    }
    // The first load failed: replace the spinner with the message and a way out.
    var box = el('div', 'modal-body');
    var close = el('button', 'btn btn-secondary');
    close.type = 'button';
    close.setAttribute('data-bs-dismiss', 'modal');
    close.textContent = text('data-modal2fa-close-text', 'Close');
    box.appendChild(alert);
    box.appendChild(close);
    content.replaceChildren(box);
  }

  // Openers. Modified clicks (new tab, ...) keep the link's normal behaviour.
  document.addEventListener('click', function (evt) {
    if (evt.defaultPrevented || evt.button !== 0 || evt.metaKey || evt.ctrlKey || evt.shiftKey || evt.altKey) {
      return;
    }
    var opener = evt.target && evt.target.closest ? evt.target.closest('[data-modal2fa-open]') : null;
    if (!opener) {
      return;
    }
    var url = opener.getAttribute('data-modal2fa-open') || opener.getAttribute('href');
    if (!url) {
      return;
    }
    evt.preventDefault();
    open(url);
  });

  // CSRF header on every htmx request.
  document.addEventListener('htmx:configRequest', function (evt) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && evt.detail && evt.detail.headers) {
      evt.detail.headers['X-CSRF-Token'] = meta.getAttribute('content') || '';
    }
  });

  // A 4xx answer inside a modal is a re-rendered form (a validation message, a lockout):
  // show it rather than dropping it as htmx does by default.
  document.addEventListener('htmx:beforeSwap', function (evt) {
    var d = evt.detail;
    if (!d || !modalOf(d.target) || !d.xhr) {
      return;
    }
    if (d.xhr.status >= 400 && d.xhr.status < 500 && d.serverResponse) {
      d.shouldSwap = true;
      d.isError = false;
    }
  });

  document.addEventListener('htmx:afterSettle', function (evt) {
    var target = (evt.detail && evt.detail.target) || evt.target;
    var modal = modalOf(target);
    if (modal) {
      settle(modal);
    }
  });

  function onFailure(evt) {
    var target = (evt.detail && evt.detail.target) || evt.target;
    var modal = modalOf(target);
    if (modal) {
      showError(contentOf(modal));
    }
  }
  document.addEventListener('htmx:responseError', onFailure);
  document.addEventListener('htmx:sendError', onFailure);

  // Commands from the HX-Trigger response header.
  document.addEventListener('modal2fa:close', function (evt) {
    var modal = commandTarget(evt);
    if (modal) {
      hide(modal);
    }
  });
  document.addEventListener('modal2fa:open', function (evt) {
    var url = evt.detail && evt.detail.url;
    if (url) {
      open(url);
    }
  });
  document.addEventListener('modal2fa:replace', function (evt) {
    var url = evt.detail && evt.detail.url;
    if (!url) {
      return;
    }
    var modal = commandTarget(evt);
    if (modal) {
      load(modal, url);
    } else {
      open(url);
    }
  });

  // Passkeys.
  var webauthn = window.SimpleWebAuthnBrowser;

  function passkeyNotice(block, text) {
    var old = block.querySelector('.modal2fa-passkey-notice');
    if (old) {
      old.remove();
    }
    var note = document.createElement('div');
    note.className = 'alert alert-warning py-2 mt-2 modal2fa-passkey-notice';
    note.setAttribute('role', 'alert');
    note.textContent = text;
    block.appendChild(note);
  }

  function showInModal(block, html) {
    var content = block.closest(CONTENT);
    if (!content) {
      return;
    }
    // htmx swaps (and processes) the fragment as if it had fetched it itself.
    htmx.swap(content, html, { swapStyle: 'innerHTML' });
    var modal = modalOf(content);
    if (modal) {
      settle(modal);
    }
  }

  function otherWay(block) {
    return block.getAttribute('data-modal2fa-passkey') === 'passwordless'
      ? 'sign in with your password'
      : 'enter a code';
  }

  function passkey(block, autofill) {
    if (!webauthn) {
      passkeyNotice(block, 'This browser cannot use passkeys here: ' + otherWay(block) + ' instead.');
      return;
    }
    var kind = block.getAttribute('data-modal2fa-passkey');
    var form = block.matches('[data-modal2fa-passkey-form]') ? block : block.querySelector('[data-modal2fa-passkey-form]');
    var body = new URLSearchParams();
    ['csrf_token', 'next'].forEach(function (name) {
      var input = form.querySelector('input[name="' + name + '"]');
      if (input) {
        body.set(name, input.value);
      }
    });
    fetch(block.getAttribute('data-modal2fa-passkey-options'), {
      method: 'POST',
      body: body,
      credentials: 'same-origin',
      headers: { 'HX-Request': 'true' },
    })
      .then(function (r) {
        var json = (r.headers.get('content-type') || '').indexOf('application/json') === 0;
        return r.text().then(function (text) {
          return { json: json, text: text };
        });
      })
      .then(function (res) {
        if (!res.json) {
          // A modal instead of options (a step-up first, an error): show it.
          showInModal(block, res.text);
          return null;
        }
        var options = JSON.parse(res.text).publicKey;
        if (kind === 'register') {
          return webauthn.startRegistration({ optionsJSON: options });
        }
        return webauthn.startAuthentication({ optionsJSON: options, useBrowserAutofill: !!autofill });
      })
      .then(function (answer) {
        if (!answer) {
          return;
        }
        form.querySelector('input[name="response"]').value = JSON.stringify(answer);
        htmx.trigger(form, 'submit');
      })
      .catch(function () {
        // Dismissed, timed out or refused by the browser: the other ways stay. An
        // autofill offer ends quietly (a button's prompt, or leaving, cancels it).
        if (!autofill) {
          passkeyNotice(block, 'The passkey was not used. Try again, or ' + otherWay(block) + '.');
        }
      });
  }

  document.addEventListener('click', function (evt) {
    var start = evt.target && evt.target.closest ? evt.target.closest('[data-modal2fa-passkey-start]') : null;
    var block = start ? start.closest('[data-modal2fa-passkey]') : null;
    if (block) {
      evt.preventDefault();
      passkey(block, false);
    }
  });

  document.addEventListener('htmx:afterSettle', function (evt) {
    var target = (evt.detail && evt.detail.target) || evt.target;
    var modal = modalOf(target);
    var block = modal ? modal.querySelector('[data-modal2fa-passkey="sign-in"]') : null;
    if (block && !block.hasAttribute('data-modal2fa-passkey-started')) {
      block.setAttribute('data-modal2fa-passkey-started', '');
      // Rendered hidden: without JavaScript the code field is the way.
      block.hidden = false;
      passkey(block, false);
    }
    var offer = modal ? modal.querySelector('[data-modal2fa-passkey="passwordless"]') : null;
    if (offer && webauthn && webauthn.browserSupportsWebAuthn() && !offer.hasAttribute('data-modal2fa-passkey-started')) {
      offer.setAttribute('data-modal2fa-passkey-started', '');
      // Shown only where it can work: hidden without JavaScript or WebAuthn.
      offer.hidden = false;
      webauthn.browserSupportsWebAuthnAutofill().then(function (yes) {
        if (yes) {
          passkey(offer, true);
        }
      });
    }
  });

  // Copy buttons.
  document.addEventListener('htmx:afterSettle', function (evt) {
    var target = (evt.detail && evt.detail.target) || evt.target;
    var modal = modalOf(target);
    if (!modal || !navigator.clipboard) {
      return;
    }
    modal.querySelectorAll('[data-modal2fa-copy]').forEach(function (button) {
      button.hidden = false;
    });
  });

  document.addEventListener('click', function (evt) {
    var button = evt.target && evt.target.closest ? evt.target.closest('[data-modal2fa-copy]') : null;
    var source = button ? document.getElementById(button.getAttribute('data-modal2fa-copy')) : null;
    if (!source || !navigator.clipboard) {
      return;
    }
    var lines = Array.prototype.map.call(source.querySelectorAll('li'), function (li) {
      return li.textContent.trim();
    });
    navigator.clipboard.writeText(lines.join('\n') + '\n').then(function () {
      button.textContent = 'Copied';
    });
  });
})();
