// A real OpenID Connect provider (the npm package oidc-provider) for Opsdeck's SSO tests, on 127.0.0.1 only.
//
//   node provider.js   with the environment:
//     OIDC_TEST_PORT           the port to listen on
//     OIDC_TEST_REDIRECT_URIS  the portal's callbacks, comma-separated (the client's redirect URIs)
//     OIDC_TEST_CLIENT_ID, OIDC_TEST_CLIENT_SECRET
//     OIDC_TEST_USERS          JSON: {"alice": {"password": "…", "groups": ["ops-admins"], "amr": ["pwd", "otp"]}}
//
// Test-only controls (never part of a real provider):
//   POST /__test/users  JSON   replaces the users (groups removed, amr changed, …)
//   POST /__test/forge  JSON {"on": true}   the JWKS document then publishes another key under the same kid, so
//                                           every ID token the portal receives is signed by a key it does not know.
// The login page is the provider's own: a form at /interaction/<uid> checking the users' passwords.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_TEST_PORT);
const issuer = `http://127.0.0.1:${port}`;
let users = JSON.parse(process.env.OIDC_TEST_USERS || '{}');
let forge = false;
const redirectUris = process.env.OIDC_TEST_REDIRECT_URIS.split(',');

function jwk(kid) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}
const signingKey = jwk('opsdeck-test-key');
const { d, p, q, dp, dq, qi, ...otherPublic } = jwk('opsdeck-test-key'); // another key, same kid: the forgery

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.OIDC_TEST_CLIENT_ID,
    client_secret: process.env.OIDC_TEST_CLIENT_SECRET,
    redirect_uris: redirectUris,
    post_logout_redirect_uris: redirectUris.map((uri) => new URL('/accounts/login/', uri).href),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    require_auth_time: true,
  }],
  jwks: { keys: [signingKey] },
  claims: {
    // amr in every ID token: how the user authenticated (the portal's provider-MFA rule reads it).
    openid: ['sub', 'amr'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'given_name', 'family_name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  // The ID token carries every claim of the granted scopes (amr and groups included), as Keycloak's does.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
  cookies: { keys: ['opsdeck-test-cookie-key'] },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: user.email || `${id}@example.test`,
          email_verified: true,
          name: user.name || id,
          preferred_username: id,
          groups: user.groups || [],
        };
      },
    };
  },
});

function page(res, status, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><title>Test provider sign-in</title></head><body>${body}</body></html>`);
}

async function readBody(req) {
  let data = '';
  for await (const chunk of req) data += chunk;
  return data;
}

async function interaction(req, res) {
  const match = req.url.match(/^\/interaction\/([^/?]+)(\/login)?/);
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (prompt.name === 'login' && !match[2]) {
    return page(res, 200, `<h1>Test provider</h1><form method="post" action="/interaction/${uid}/login">
      <label>Username <input name="login" id="provider-login" autocomplete="off"></label>
      <label>Password <input name="password" id="provider-password" type="password"></label>
      <button type="submit" id="provider-submit">Sign in at the provider</button></form>`);
  }
  if (prompt.name === 'login') {
    const form = new URLSearchParams(await readBody(req));
    const id = form.get('login');
    const user = users[id];
    if (!user || user.password !== form.get('password')) {
      return page(res, 401, '<p id="provider-error">Wrong username or password.</p>');
    }
    return provider.interactionFinished(req, res, {
      login: { accountId: id, amr: user.amr || ['pwd'] },
    }, { mergeWithLastSubmission: false });
  }
  // Consent: granted at once for what the client asked.
  const grant = details.grantId ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } },
    { mergeWithLastSubmission: true });
}

const callback = provider.callback();
http.createServer(async (req, res) => {
  try {
    if (req.url === '/__test/users' && req.method === 'POST') {
      users = JSON.parse(await readBody(req));
      res.writeHead(204); return res.end();
    }
    if (req.url === '/__test/forge' && req.method === 'POST') {
      forge = Boolean(JSON.parse(await readBody(req)).on);
      res.writeHead(204); return res.end();
    }
    if (req.url === '/jwks' && forge) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ keys: [otherPublic] }));
    }
    if (req.url.startsWith('/interaction/')) return await interaction(req, res);
    return callback(req, res);
  } catch (error) {
    page(res, 500, `<pre>${String(error)}</pre>`);
  }
}).listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
