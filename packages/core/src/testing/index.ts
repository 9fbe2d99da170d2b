/**
 * `@latchkey/core/testing`: the conformance suite every integration's tests call, and the helpers it is
 * made of. It imports vitest, so it is a separate entry point: `@latchkey/core` itself never does.
 */
export {
  type ActionRun,
  acceptedProblems,
  actionSummaryProblems,
  actionTargetProblems,
  authenticateProblems,
  baseUrlResolver,
  credentialSchemaProblems,
  ECHO_STATUSES,
  overrideBaseUrl,
  refusedProblems,
  runAction,
  type SampleCredential,
  type SecretPlacement,
  testOutcomeProblems,
  testRequestProblems,
} from './checks.js';
export {
  type ConformanceOptions,
  type CredentialSamples,
  describeActionConformance,
  describeCredentialConformance,
  describeIntegrationConformance,
  type KnownIssueCheck,
} from './conformance.js';
export { expectRefused } from './expect.js';
export {
  echoResponse,
  exampleSample,
  type InvalidSample,
  invalidSamples,
  submittedStrings,
} from './samples.js';
export { carriesSecret, showsSecret } from './secret-search.js';
