// The metadata server's instance identity tokens (compute/docs/instances/verifying-instance-identity): each
// VM gets a token signed RS256 with the simulator's own key, with the google.compute_engine claims of that
// VM, for the audience the OS policy asks for; the simulator serves the public key as Google's v1
// certificates endpoint does (JSON: key id -> PEM), so logHeartbeat verifies them unchanged, only
// HEARTBEAT_TOKEN_CERTS_URL differs. The key pair is made when the simulator starts.
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { route, type Route } from './http.js';
import type { SimVm, World } from './world.js';

/** A token lives an hour; the refresher fetches a new one every 30 minutes (of the VM's clock). */
const LIFETIME_S = 3600;
const REFRESH_S = 30 * 60;

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export class IdentityTokens {
  readonly kid = randomBytes(20).toString('hex');
  private readonly privateKey: KeyObject;
  /** The public key as PEM: what google-auth-library's verify takes (a certificate or a public key). */
  readonly publicPem: string;
  /** Each VM's current token, and when it was issued (s), as its refresher keeps it. */
  private readonly current = new Map<string, { token: string; iat: number; audience: string }>();

  constructor(private readonly world: World) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  /**
   * The VM's token at `now` (the VM's clock: the simulated rounds run at given times), refreshed once it is
   * 30 minutes old, as the OS policy's refresher does; a clock set back gets a new one too.
   */
  tokenFor(vm: SimVm, audience: string, now: Date): string {
    const at = Math.floor(now.getTime() / 1000);
    const held = this.current.get(vm.id);
    if (held && held.audience === audience && at >= held.iat && at - held.iat < REFRESH_S) return held.token;
    const token = this.mint(vm, audience, at);
    this.current.set(vm.id, { token, iat: at, audience });
    return token;
  }

  /** A token as the metadata server issues it with format=full. */
  mint(vm: SimVm, audience: string, iat: number): string {
    const header = { alg: 'RS256', kid: this.kid, typ: 'JWT' };
    const payload = {
      iss: 'https://accounts.google.com',
      aud: audience,
      azp: vm.serviceAccount ?? 'default',
      sub: vm.serviceAccount ?? 'default',
      iat,
      exp: iat + LIFETIME_S,
      google: {
        compute_engine: {
          project_id: vm.project,
          project_number: Number(this.world.project(vm.project).number),
          zone: vm.zone,
          instance_id: vm.id,
          instance_name: vm.name,
          instance_creation_timestamp: Math.floor(Date.parse(vm.creationTimestamp) / 1000),
        },
      },
    };
    const signed = `${b64url(header)}.${b64url(payload)}`;
    return `${signed}.${sign('RSA-SHA256', Buffer.from(signed), this.privateKey).toString('base64url')}`;
  }

  /** Google's https://www.googleapis.com/oauth2/v1/certs: key id -> PEM. */
  certs(): Record<string, string> {
    return { [this.kid]: this.publicPem };
  }

  reset(): void {
    this.current.clear();
  }
}

export function identityTokenRoutes(tokens: IdentityTokens): Route[] {
  return [route('GET', /^\/oauth2\/v1\/certs$/, 'oauth2.certs', () => tokens.certs())];
}
