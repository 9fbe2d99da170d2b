/**
 * A message or format hint with its `backticked` parts shown as code: how messages mark literal text
 * ("Starts with `SG.`.", "`https://api.example.com` is not a domain"), so it reads right as plain text too.
 */
export function CodeText({ text }: { text: string }) {
  const parts = text.split(/`([^`]+)`/);
  // Odd parts are the backticked ones; the parts of one text never reorder, so their index is their identity.
  return <>{parts.map((part, index) => (index % 2 === 1 ? <code key={index}>{part}</code> : part))}</>;
}
