// Instance identity tokens: Google's signature checked by google-auth-library against the certificates at
// HEARTBEAT_TOKEN_CERTS_URL (cached by the client). What the claims must say is decided in
// shared/domain/heartbeat-identity.ts (judgeToken), at the line's time.
import type { OAuth2Client } from 'google-auth-library';
import { clients, type Awaitable } from '../clients.js';
import type { SignatureCheck, TokenClaims } from '../domain/heartbeat-identity.js';

/** Who signs instance identity tokens (the `iss` claim). */
const ISSUERS = ['https://accounts.google.com', 'accounts.google.com'];
/** Google's instance identity tokens live an hour; anything claiming more than a day is not one. */
const MAX_LIFETIME_S = 24 * 3600;

const claimsOf = (token: string): TokenClaims =>
  JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as TokenClaims;

/**
 * Whether the token is signed by a key in Google's certificates. The library checks the signature, then the
 * times against the clock: a token it finds expired had a good signature (the library's order), so its claims
 * are returned for the domain to judge at the line's time. A failure to fetch the certificates is thrown (its
 * cause is unknown: the message is redelivered, never judged).
 */
export async function checkSignature(
  token: string,
  client: Awaitable<OAuth2Client> = clients.identityTokens(),
): Promise<SignatureCheck> {
  const oauth = await client;
  const { certs } = await oauth.getFederatedSignonCertsAsync();
  try {
    const ticket = await oauth.verifySignedJwtWithCertsAsync(token, certs, undefined, ISSUERS, MAX_LIFETIME_S);
    return { ok: true, claims: (ticket.getPayload() ?? {}) as TokenClaims };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/^Token used too (late|early)/.test(message))
      return { ok: false, problem: 'token-expired', claims: claimsOf(token) };
    if (/^(No pem found|Invalid token signature)/.test(message)) return { ok: false, problem: 'token-signature' };
    return { ok: false, problem: 'token-malformed' };
  }
}
