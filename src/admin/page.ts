// The admin page: four static files (HTML, script, stylesheet, icon) read once at start and served
// without auth; the page itself calls /v1/* with the Bearer token its user types in.
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';

interface Asset {
  readonly body: Buffer;
  readonly type: string;
}

/** Shipped next to the compiled code: dist/src/admin/page.js → src/admin/page/ in the package. */
const ASSET_DIR = new URL('../../../src/admin/page/', import.meta.url);

// Nothing but the page's own files may load or be called; no frames, no forms posting elsewhere.
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

export class AdminPage {
  private constructor(private readonly assets: ReadonlyMap<string, Asset>) {}

  static async load(): Promise<AdminPage> {
    const read = async (name: string, type: string): Promise<Asset> => ({ body: await readFile(new URL(name, ASSET_DIR)), type });
    const html = await read('index.html', 'text/html; charset=utf-8');
    return new AdminPage(
      new Map([
        ['/', html],
        ['/ui/', html],
        ['/ui/app.js', await read('app.js', 'text/javascript; charset=utf-8')],
        ['/ui/style.css', await read('style.css', 'text/css; charset=utf-8')],
        // Named by the page, so browsers do not go looking for /favicon.ico.
        ['/ui/icon.svg', await read('icon.svg', 'image/svg+xml')],
      ]),
    );
  }

  /** Answers a GET/HEAD for one of the page's paths; false for any other path. */
  serve(path: string, response: ServerResponse): boolean {
    const asset = this.assets.get(path);
    if (asset === undefined) return false;
    response.writeHead(200, { ...PAGE_HEADERS, 'content-type': asset.type, 'content-length': String(asset.body.length) }).end(asset.body);
    return true;
  }
}
