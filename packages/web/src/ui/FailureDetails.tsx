/**
 * A failure's system code (`ENOTFOUND`) behind a "Details" disclosure, for whoever wants it: the sentence says
 * what happened in words ("api.sendgrid.com could not be reached"), without it.
 */
export function FailureDetails({ code }: { code?: string | undefined }) {
  if (!code) return null;
  return (
    <details className="failure-details">
      <summary>Details</summary>
      <p className="failure-code">
        Error code: <code>{code}</code>
      </p>
    </details>
  );
}
