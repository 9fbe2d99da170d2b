export function TestBadge({ ok }: { ok: boolean }) {
  return (
    <span className={`badge ${ok ? 'badge-ok' : 'badge-danger'}`}>{ok ? 'Test passed' : 'Test failed'}</span>
  );
}
