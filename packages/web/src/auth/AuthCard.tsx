import type { ReactNode } from 'react';
import { useDocumentTitle } from '../app/router';

/** The centred card of the signed-out pages (sign in, sign up, accept an invite), under the brand. */
export function AuthCard({
  title,
  documentTitle = title,
  subtitle,
  children,
}: {
  title: string;
  documentTitle?: string;
  subtitle?: string;
  children: ReactNode;
}) {
  useDocumentTitle(documentTitle);
  return (
    <div className="auth-page">
      <main className="auth-card" id="main">
        <div className="brand brand-large">
          <span className="brand-mark" aria-hidden="true">
            L
          </span>
          <span className="brand-name">Latchkey</span>
        </div>
        <h1 className="auth-title">{title}</h1>
        {subtitle && <p className="auth-subtitle">{subtitle}</p>}
        {children}
      </main>
    </div>
  );
}
