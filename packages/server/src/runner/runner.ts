import {
  applyCredential,
  asClause,
  asSentence,
  type CredentialTypeDefinition,
  credentialSubject,
  type HttpResponse,
  type IntegrationDefinition,
  type OAuth2Declaration,
  type OutgoingRequest,
  type RequestContext,
} from '@latchkey/core';
import { membershipOf } from '../access/membership.js';
import { recordAudit } from '../audit/audit.js';
import { DecryptionError } from '../crypto/index.js';
import { InvalidInputError, issuesUnder, NotFoundError } from '../errors.js';
import { connectionProblem, readyToUse, refreshConnection } from '../oauth/refresh.js';
import type { Actor, Services } from '../services.js';
import { CredentialDestinationError, destinationCheck, outboundOptions } from './destinations.js';
import { OutboundRefusedError } from './outbound-guard.js';
import { type CredentialApplier, OutboundError, sendOutbound } from './outbound-http.js';
import { DecryptedCredential, scrubResponse, scrubSecrets } from './redaction.js';
import {
  CredentialUnavailableError,
  type NodeToRun,
  resolveNodeCredential,
  resolveSecretCredential,
} from './resolve-credential.js';
import { baseUrlFor } from './settings.js';

export interface NodeRunResult {
  nodeId: string;
  nodeName: string;
  ok: boolean;
  summary?: string;
  /** What went wrong, naming the node: "Node 'Welcome': api.sendgrid.com could not be reached." */
  error?: string;
  /** The same without naming the node, for where its name is shown already (its card in the editor). */
  reason?: string;
  /** The system's name for the failure (`ENOTFOUND`), for a details disclosure; in neither sentence. */
  code?: string;
  durationMs: number;
}

/**
 * A failure as a person reads it: a sentence of its own, or what is said after the node's name ("needs a
 * SendGrid credential: …"). Secret values are scrubbed from anything that came from outside.
 */
type Failure = ({ sentence: string } | { predicate: string }) & { code?: string };

/** A node's failure, told with its name (`error`) and without (`reason`). */
function nodeFailure(nodeName: string, failure: Failure): Pick<NodeRunResult, 'error' | 'reason' | 'code'> {
  const code = failure.code ? { code: failure.code } : {};
  if ('predicate' in failure) {
    const predicate = asSentence(failure.predicate);
    return {
      error: `Node '${nodeName}' ${predicate}`,
      reason: predicate.charAt(0).toUpperCase() + predicate.slice(1),
      ...code,
    };
  }
  const sentence = asSentence(failure.sentence);
  return { error: `Node '${nodeName}': ${sentence}`, reason: sentence, ...code };
}

function requestContext(svc: Services, integration: IntegrationDefinition): RequestContext {
  return { baseUrl: (variant) => baseUrlFor(svc.runnerSettings, integration, variant) };
}

/** What a run learns of a credential's requests: whether it went on one, and where it was kept from. */
interface CredentialOutcome {
  applied: boolean;
  /** The host a request was refused for (allowed domains, plain http), with the reason. */
  refused?: { host: string; reason: 'not_allowed_host' | 'plain_http' };
}

/**
 * The credential, applied the way its type says (`applyCredential`: a static type's `authenticate`, an OAuth2
 * type's access token), only where it may go (`destinationCheck`). `outcome` (a run's) learns whether the
 * credential went on a request or was refused before one.
 */
function credentialApplier(
  svc: Services,
  integration: IntegrationDefinition,
  definition: CredentialTypeDefinition,
  credential: DecryptedCredential,
  subject: string,
  outcome?: CredentialOutcome,
): CredentialApplier {
  const check = destinationCheck(svc, definition, credential.publicFields, subject);
  return (request: OutgoingRequest) => {
    const authenticated = applyCredential(
      definition,
      credential.fields(),
      request,
      requestContext(svc, integration),
    );
    let checked: OutgoingRequest;
    try {
      checked = check(authenticated);
    } catch (error) {
      // The host only (a credential that supplies its URL, a Slack webhook, keeps its path secret).
      if (outcome && (error instanceof CredentialDestinationError || error instanceof OutboundRefusedError))
        outcome.refused = {
          host: hostOf(authenticated.url),
          reason: error instanceof CredentialDestinationError ? 'not_allowed_host' : 'plain_http',
        };
      throw error;
    }
    if (outcome) outcome.applied = true;
    return checked;
  };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}

const UNDECRYPTABLE =
  'The stored credential could not be decrypted (it was altered, or encrypted with a key this server does not have). ' +
  'Replace its value, or select another credential.';

/** A failure of a run's node or of a credential test, as a person reads it (`Failure`). */
function describeFailure(error: unknown, secretValues: readonly string[]): Failure {
  if (error instanceof CredentialUnavailableError) return { predicate: error.predicate };
  if (error instanceof InvalidInputError || error instanceof CredentialDestinationError)
    return { sentence: scrubSecrets(error.message, secretValues) };
  if (error instanceof OutboundRefusedError)
    return { sentence: `The request was refused: ${scrubSecrets(error.message, secretValues)}` };
  if (error instanceof OutboundError)
    return {
      sentence: scrubSecrets(error.message, secretValues),
      ...(error.code ? { code: scrubSecrets(error.code, secretValues) } : {}),
    };
  if (error instanceof DecryptionError) return { sentence: UNDECRYPTABLE };
  // Anything else carries no message we could vouch for (it might quote a value): say only what kind it was.
  return {
    sentence: 'Something went wrong unexpectedly',
    code: error instanceof Error ? error.name : typeof error,
  };
}

/** A credential test's failure: the sentence, with its code apart. */
function testFailure(error: unknown, secretValues: readonly string[]): CredentialTestResult {
  const failure = describeFailure(error, secretValues);
  const message = asSentence(
    'sentence' in failure ? failure.sentence : `This credential ${failure.predicate}`,
  );
  return { ok: false, message, ...(failure.code ? { code: failure.code } : {}) };
}

/**
 * Records a use of a secret, in one transaction: its last-used time, a test's result (kept for the secrets list)
 * and the audit event.
 */
async function recordCredentialUse(
  svc: Services,
  actor: Actor,
  workspaceId: string,
  use: {
    secretId: string;
    secretName: string;
    action: 'secret.used' | 'secret.tested' | 'secret.refused_destination';
    details: Record<string, unknown>;
  },
  test?: CredentialTestResult,
): Promise<void> {
  await svc.db.transaction().execute(async (trx) => {
    const now = new Date();
    // "Last used" counts a run's use only: a test shows as the last test, and a refusal is not a use.
    if (use.action === 'secret.used' || test)
      await trx
        .updateTable('secrets')
        .set({
          ...(use.action === 'secret.used' ? { last_used_at: now } : {}),
          ...(test
            ? {
                last_test_ok: test.ok,
                last_test_message: test.message,
                last_test_code: test.code ?? null,
                last_tested_at: now,
              }
            : {}),
        })
        .where('id', '=', use.secretId)
        .where('workspace_id', '=', workspaceId)
        .execute();
    await recordAudit(trx, {
      workspaceId,
      actorId: actor.userId,
      action: use.action,
      targetType: 'secret',
      targetId: use.secretId,
      targetName: use.secretName,
      details: use.details,
    });
  });
}

async function runNode(
  svc: Services,
  actor: Actor,
  workflow: { id: string; workspaceId: string; name: string },
  node: NodeToRun & { params: Record<string, unknown> },
): Promise<NodeRunResult> {
  const started = performance.now();
  const done = (result: Omit<NodeRunResult, 'nodeId' | 'nodeName' | 'durationMs'>): NodeRunResult => ({
    nodeId: node.id,
    nodeName: node.name,
    ...result,
    durationMs: Math.round(performance.now() - started),
  });
  const integration = svc.registry.integrationForNodeType(node.nodeType);
  const fail = (failure: Failure) => done({ ok: false, ...nodeFailure(node.name, failure) });
  if (!integration) return fail({ predicate: `uses node type '${node.nodeType}', which is not installed` });

  const params = svc.registry.validateParams(node.nodeType, node.params, 'complete');
  if (!params.ok) {
    const fields = params.issues.map((i) => `${i.path.join('.')}: ${asClause(i.message)}`).join('; ');
    return fail({ predicate: `is not fully configured (${fields})` });
  }

  let secretValues: readonly string[] = [];
  let connectionName: string | undefined;
  try {
    let resolved = await resolveNodeCredential(svc, workflow.workspaceId, node, integration);
    connectionName = `${integration.displayName} connection '${resolved.secretName}'`;
    secretValues = resolved.credential.secretValues;
    resolved = await readyToUse(svc, workflow.workspaceId, resolved);
    const definition = svc.registry.credentialType(resolved.credential.credentialType)?.definition;
    if (!definition)
      throw new CredentialUnavailableError(node.name, 'uses a credential type that is not installed');
    const subject = credentialSubject(resolved.secretName);
    const options = outboundOptions(svc, integration);
    // Every value this run has held (a refreshed token besides the old one) is scrubbed from what it shows.
    const seen = new Set(secretValues);
    // Each credential this run holds (a refreshed one is the same secret), and whether it went on a request.
    const outcome: CredentialOutcome = { applied: false };
    const use = (current: typeof resolved) => {
      for (const value of current.credential.secretValues) seen.add(value);
      secretValues = [...seen];
      return credentialApplier(svc, integration, definition, current.credential, subject, outcome);
    };
    let apply = use(resolved);
    const firstUse = resolved;
    const send = async (request: OutgoingRequest) => {
      let response = await sendOutbound(request, apply, options);
      // The service rejected the access token: one refresh (shared with concurrent runs), one retry.
      if (definition.oauth2 && resolved === firstUse && isTokenRejected(definition.oauth2, response)) {
        resolved = await refreshConnection(svc, workflow.workspaceId, resolved);
        apply = use(resolved);
        response = await sendOutbound(request, apply, options);
      }
      // The plugin reads the response only after every secret value was removed from it.
      return scrubResponse(response, secretValues);
    };
    let result: { ok: boolean; summary: string };
    try {
      result = await integration.action({
        params: params.value,
        credential: {
          type: resolved.credential.credentialType,
          publicFields: { ...resolved.credential.publicFields },
        },
        baseUrl: (variant) => baseUrlFor(svc.runnerSettings, integration, variant),
        send,
      });
    } finally {
      // `secret.used` only when the credential went on a request; a refusal of where it would go is its own
      // event (nothing was sent); an action that sent nothing used nothing.
      const where = {
        workflowId: workflow.id,
        workflowName: workflow.name,
        nodeId: node.id,
        nodeName: node.name,
      };
      if (outcome.applied || outcome.refused)
        await recordCredentialUse(svc, actor, workflow.workspaceId, {
          secretId: resolved.secretId,
          secretName: resolved.secretName,
          ...(outcome.applied
            ? { action: 'secret.used' as const, details: where }
            : { action: 'secret.refused_destination' as const, details: { ...where, ...outcome.refused } }),
        });
    }
    const summary = scrubSecrets(result.summary, secretValues);
    return result.ok ? done({ ok: true, summary }) : fail({ sentence: summary });
  } catch (error) {
    const problem = connectionName && connectionProblem(error, connectionName);
    return fail(problem ? { predicate: problem } : describeFailure(error, secretValues));
  }
}

/** HTTP 401, or the OAuth2 type's own "this token is no longer good" answer. */
function isTokenRejected(declaration: OAuth2Declaration, response: HttpResponse): boolean {
  return response.status === 401 || declaration.isTokenRejected?.(response) === true;
}

/**
 * Runs every node of a workflow in order. Each node resolves its credential afresh; a node that fails
 * (no credential, refused, rejected) does not stop the others, and the result says which failed and why.
 */
export async function runWorkflow(svc: Services, actor: Actor, input: { workflowId: string }) {
  const workflow = await svc.db
    .selectFrom('workflows as w')
    .innerJoin('memberships as m', (join) =>
      join.onRef('m.workspace_id', '=', 'w.workspace_id').on('m.user_id', '=', actor.userId),
    )
    .select(['w.id', 'w.workspace_id', 'w.name'])
    .where('w.id', '=', input.workflowId)
    .executeTakeFirst();
  if (!workflow) throw new NotFoundError('Workflow');
  const nodes = await svc.db
    .selectFrom('workflow_nodes')
    .select(['id', 'name', 'node_type', 'params', 'secret_id', 'lost_secret_name'])
    .where('workflow_id', '=', workflow.id)
    .orderBy('position')
    .orderBy('id')
    .execute();
  const results: NodeRunResult[] = [];
  for (const node of nodes) {
    results.push(
      await runNode(
        svc,
        actor,
        { id: workflow.id, workspaceId: workflow.workspace_id, name: workflow.name },
        {
          id: node.id,
          name: node.name,
          nodeType: node.node_type,
          params: node.params,
          secretId: node.secret_id,
          lostSecretName: node.lost_secret_name,
        },
      ),
    );
  }
  const ok = results.every((r) => r.ok);
  // Who ran it and how it went (which nodes failed, by id and name; never a message from a service). A run
  // whose outcome cannot be recorded is reported as an error.
  const failed = results.filter((r) => !r.ok);
  await recordAudit(svc.db, {
    workspaceId: workflow.workspace_id,
    actorId: actor.userId,
    action: 'workflow.run',
    targetType: 'workflow',
    targetId: workflow.id,
    targetName: workflow.name,
    details: {
      ok,
      nodeCount: results.length,
      failedCount: failed.length,
      failedNodes: failed.slice(0, 50).map((r) => ({ nodeId: r.nodeId, nodeName: r.nodeName })),
    },
  });
  return { ok, nodes: results };
}

const noTestMessage = (definition: CredentialTypeDefinition) =>
  `${definition.displayName} credentials have no test request: use them in a workflow to check them`;

async function runCredentialTest(
  svc: Services,
  credential: DecryptedCredential,
  label: string,
): Promise<CredentialTestResult> {
  const entry = svc.registry.credentialType(credential.credentialType);
  if (!entry) return { ok: false, message: 'This credential type is not installed' };
  const { integration, definition } = entry;
  if (!definition.test) return { ok: false, message: noTestMessage(definition) };
  try {
    const request = definition.test.request({ ...credential.publicFields }, requestContext(svc, integration));
    const response = await sendOutbound(
      request,
      credentialApplier(svc, integration, definition, credential, label),
      outboundOptions(svc, integration),
    );
    const outcome = definition.test.interpret(scrubResponse(response, credential.secretValues));
    return { ok: outcome.ok, message: scrubSecrets(outcome.message, credential.secretValues) };
  } catch (error) {
    return testFailure(error, credential.secretValues);
  }
}

/** A credential test's outcome; `code` (a failure's system name, `ENOTFOUND`) is kept out of the message. */
export interface CredentialTestResult {
  ok: boolean;
  message: string;
  code?: string;
}

export type TestCredentialInput =
  | { workspaceId: string; secretId: string }
  | { workspaceId: string; credentialType: string; data: unknown };

/** Checks a saved secret, or unsaved form data, against its service. A saved secret's result is kept. */
export async function testCredential(
  svc: Services,
  actor: Actor,
  input: TestCredentialInput,
): Promise<CredentialTestResult> {
  await membershipOf(svc.db, input.workspaceId, actor.userId);
  if ('secretId' in input) {
    const secret = await svc.db
      .selectFrom('secrets')
      .select(['id', 'name', 'node_type', 'credential_type'])
      .where('id', '=', input.secretId)
      .where('workspace_id', '=', input.workspaceId)
      .executeTakeFirst();
    if (!secret) throw new NotFoundError('Secret');
    // A type without a test request: nothing is decrypted or sent, so nothing is recorded as a use or as a
    // (failed) test result that the secrets list would then show against a credential that may work fine.
    const definition = svc.registry.credentialType(secret.credential_type)?.definition;
    if (definition && !definition.test) return { ok: false, message: noTestMessage(definition) };
    if (!svc.registry.integrationForNodeType(secret.node_type)) throw new NotFoundError('Integration');
    let outcome: CredentialTestResult;
    try {
      const resolved = await resolveSecretCredential(svc, input.workspaceId, {
        id: secret.id,
        nodeType: secret.node_type,
      });
      // Deleted since the read above: as if it never existed.
      if (!resolved) throw new NotFoundError('Secret');
      const ready = await readyToUse(svc, input.workspaceId, resolved);
      outcome = await runCredentialTest(svc, ready.credential, credentialSubject(secret.name));
    } catch (error) {
      const problem = connectionProblem(error, 'connection');
      if (problem) outcome = { ok: false, message: `This credential ${problem}` };
      // Undecryptable: a failed test the list should show.
      else if (error instanceof DecryptionError) outcome = { ok: false, message: UNDECRYPTABLE };
      else throw error;
    }
    await recordCredentialUse(
      svc,
      actor,
      input.workspaceId,
      { secretId: secret.id, secretName: secret.name, action: 'secret.tested', details: { ok: outcome.ok } },
      outcome,
    );
    return outcome;
  }
  const result = svc.registry.validateCredential(input.credentialType, input.data);
  if (!result.ok) {
    throw new InvalidInputError(issuesUnder('data', 'credentialType', result.issues));
  }
  // An OAuth2 connection has a token only once it is connected (or, client credentials, saved).
  if (svc.registry.credentialType(input.credentialType)?.definition.oauth2)
    return { ok: false, message: 'An OAuth2 connection is checked when it connects: save or connect it' };
  const credential = new DecryptedCredential(
    input.credentialType,
    result.value.publicFields,
    result.value.secretFields,
  );
  return runCredentialTest(svc, credential, credentialSubject());
}
