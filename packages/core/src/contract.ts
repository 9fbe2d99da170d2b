import { z } from 'zod';
import type { HttpResponse, OutgoingRequest } from './http.js';
import { applyOAuth2Token, type OAuth2Declaration, oauth2TokenOf } from './oauth2.js';

export type CredentialShape = Record<string, z.ZodType<string | undefined>>;

/** What `authenticate` and test requests may know besides the credential itself. */
export interface RequestContext {
  /** The integration's base URL for a variant ("default", or e.g. "us"/"eu"), after configuration overrides. */
  baseUrl(variant?: string): string;
}

export interface TestOutcome {
  ok: boolean;
  /** A message a user can act on. It never contains a credential value. */
  message: string;
}

export interface CredentialTest<Public> {
  /** The request that checks the credential against the service; `authenticate` is applied to it afterwards. */
  request(publicFields: Public, ctx: RequestContext): OutgoingRequest;
  /** Turns the service's answer into an outcome. */
  interpret(response: HttpResponse): TestOutcome;
}

export interface CredentialTypeDefinition<Shape extends CredentialShape = CredentialShape> {
  /** Globally unique id, e.g. `sendgridApiKey`. */
  type: string;
  displayName: string;
  description?: string;
  fields: Shape;
  /** Built by `defineCredentialType`: a strict object of `fields` (unknown fields are refused). */
  schema: z.ZodObject<Shape, z.core.$strict>;
  /**
   * Applies the credential to an outgoing request. Pure: returns a new request, puts the secret only
   * where the service expects it, and leaves the rest of the request as it was. Required for static types;
   * an OAuth2 type applies its access token instead (`oauth2.applyToken`).
   */
  authenticate?(
    credential: z.output<z.ZodObject<Shape>>,
    request: OutgoingRequest,
    ctx: RequestContext,
  ): OutgoingRequest;
  /**
   * Makes this an OAuth2 type: its fields are the client's settings (`oauth2Fields`), and the server obtains,
   * stores, refreshes and applies the tokens (docs/integrations.md).
   */
  oauth2?: OAuth2Declaration;
  test?: CredentialTest<Record<string, string>>;
  /**
   * Hosts this credential may be sent to, from its public fields (e.g. an "allowed domains" field). A type
   * that declares it is default-deny: the server applies the credential only to a listed host or a subdomain
   * of one (`credentialDestinations`), and an empty list means nowhere until someone adds hosts.
   */
  allowedHosts?(publicFields: Record<string, string>): string[];
}

/**
 * Applies a credential to a request the way its type says: a static type's `authenticate`, or an OAuth2 type's
 * access token (held among `fields` by the server, `OAUTH2_TOKEN_FIELDS`).
 */
export function applyCredential(
  definition: CredentialTypeDefinition,
  fields: Record<string, string>,
  request: OutgoingRequest,
  ctx: RequestContext,
): OutgoingRequest {
  if (definition.oauth2) return applyOAuth2Token(definition.oauth2, oauth2TokenOf(fields), request);
  if (!definition.authenticate) throw new Error(`${definition.type} declares no authenticate`);
  return definition.authenticate(fields, request, ctx);
}

export interface CredentialTypeInput<Shape extends CredentialShape>
  extends Omit<CredentialTypeDefinition<Shape>, 'schema'> {}

type Authenticate<Shape extends CredentialShape> = NonNullable<
  CredentialTypeDefinition<Shape>['authenticate']
>;

/** A static credential type: it applies itself to requests (`authenticate`). */
export type StaticCredentialType<Shape extends CredentialShape = CredentialShape> =
  CredentialTypeDefinition<Shape> & {
    authenticate: Authenticate<Shape>;
    oauth2?: undefined;
  };

/** An OAuth2 credential type: the server obtains and applies its tokens. */
export type OAuth2CredentialType<Shape extends CredentialShape = CredentialShape> =
  CredentialTypeDefinition<Shape> & {
    oauth2: OAuth2Declaration;
    authenticate?: undefined;
  };

export function defineCredentialType<const Shape extends CredentialShape>(
  definition: Omit<CredentialTypeInput<Shape>, 'authenticate' | 'oauth2'> & {
    authenticate: Authenticate<Shape>;
    oauth2?: undefined;
  },
): StaticCredentialType<Shape>;
export function defineCredentialType<const Shape extends CredentialShape>(
  definition: Omit<CredentialTypeInput<Shape>, 'authenticate' | 'oauth2'> & {
    oauth2: OAuth2Declaration;
    authenticate?: undefined;
  },
): OAuth2CredentialType<Shape>;
export function defineCredentialType<const Shape extends CredentialShape>(
  definition: CredentialTypeInput<Shape>,
): CredentialTypeDefinition<Shape> {
  return { ...definition, schema: z.strictObject(definition.fields) };
}

/** What an action sees of the credential: its type and its public fields, never a secret value. */
export interface ActionCredential {
  type: string;
  publicFields: Record<string, string>;
}

export interface ActionContext<Params> {
  params: Params;
  credential: ActionCredential;
  baseUrl(variant?: string): string;
  /** Sends a request with the node's credential applied by its credential type's `authenticate`. */
  send(request: OutgoingRequest): Promise<HttpResponse>;
}

export interface ActionResult {
  ok: boolean;
  /** A short summary of what happened ("Email accepted by SendGrid (202)"). Never a credential value. */
  summary: string;
}

export interface IntegrationDefinition<Params extends z.ZodObject = z.ZodObject> {
  /** Package-style id, e.g. `sendgrid`, `http-request`. */
  id: string;
  displayName: string;
  description: string;
  /** The action node type this integration provides, e.g. `sendgrid`, `httpRequest`. */
  nodeType: string;
  /** Base URLs by variant; overridable with `LATCHKEY_BASE_URL_<ID>[_<VARIANT>]`. */
  baseUrls: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: each credential type has its own shape
  credentialTypes: readonly CredentialTypeDefinition<any>[];
  /** The node's parameters, described by a zod object whose fields carry `FieldMeta`. */
  params: Params;
  /**
   * The parameter holding the URL the node sends its credential to (HTTP Request: `url`), when the node's
   * credential types restrict their hosts: the server refuses to save a node whose URL the selected credential
   * may not go to, instead of only failing its runs.
   */
  destinationParam?: keyof z.output<Params> & string;
  action(ctx: ActionContext<z.output<Params>>): Promise<ActionResult>;
}

export function defineIntegration<const Params extends z.ZodObject>(
  definition: IntegrationDefinition<Params>,
): IntegrationDefinition<Params> {
  return definition;
}
