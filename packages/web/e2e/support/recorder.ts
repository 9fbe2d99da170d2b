import type { Page, Request, Response } from 'playwright-core';

/**
 * Keeps the body of every response a page receives, and every request it sends, so a test can prove a
 * secret value never travels back from the server and that a rejected form sent nothing.
 */
export class NetworkRecorder {
  readonly requests: { url: string; method: string; postData: string | null }[] = [];
  private readonly bodies: Promise<{ url: string; status: number; body: string }>[] = [];

  attach(page: Page): this {
    page.on('request', (request: Request) => {
      this.requests.push({ url: request.url(), method: request.method(), postData: request.postData() });
    });
    page.on('response', (response: Response) => {
      this.bodies.push(
        response
          .text()
          .then((body) => ({ url: response.url(), status: response.status(), body }))
          .catch(() => ({ url: response.url(), status: response.status(), body: '' })),
      );
    });
    return this;
  }

  async responses(): Promise<{ url: string; status: number; body: string }[]> {
    return Promise.all(this.bodies);
  }

  /** tRPC procedure calls sent so far, e.g. `secrets.create` (batched calls count once per procedure). */
  procedureCalls(name: string): number {
    return this.requests.filter((request) => {
      const path = new URL(request.url).pathname;
      return path.startsWith('/trpc/') && path.slice('/trpc/'.length).split(',').includes(name);
    }).length;
  }
}
