// files.js: file messages in the chat page (issue 14, files). A file of
// any type goes up with POST /v1/files (Client.sendFile) and shows as a
// chip: an icon, its name, size and type, and a download link. The name is
// the server's sanitised one, drawn as text (never HTML). The download
// asks the server for a signed link (POST /v1/attachments/{id}/link) when
// clicked, since a link works for 5 minutes only, and opens it: the server
// serves a file with Content-Disposition: attachment, so the browser saves
// it under its name and never shows it in the page.

const UNITS = ['B', 'KiB', 'MiB', 'GiB'];

/** formatSize shows a byte count in binary units: "912 B", "1.5 KiB", "25 MiB". */
export function formatSize(n) {
  let v = Math.max(0, Number(n) || 0);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = u === 0 || v >= 10 ? 0 : 1;
  return `${v.toFixed(digits).replace(/\.0$/, '')} ${UNITS[u]}`;
}

/**
 * fileBadge is the short label a file's icon shows: its extension, upper
 * case, at most 4 characters ("PDF", "TXT"), or "FILE". Text, not an
 * emoji, so it shows with any font.
 */
export function fileBadge(name) {
  const m = /\.([A-Za-z0-9]{1,4})$/.exec(name || '');
  return m ? m[1].toUpperCase() : 'FILE';
}

/** typeLabel is a content type without its parameters ("text/plain"). */
function typeLabel(ct) {
  return (ct || 'application/octet-stream').split(';')[0].trim();
}

/**
 * fileChip draws a file: h is the page's element builder; file is
 * {name, size, content_type}; download, when given, is called on a click
 * of the download link (a stored file), and status, when given, replaces
 * the link (a file still in the outbox).
 */
export function fileChip(h, file, { download, status } = {}) {
  const name = file.name || 'file';
  const meta = `${formatSize(file.size)} · ${typeLabel(file.content_type)}`;
  return h(
    'div',
    { class: 'file-chip', 'data-testid': 'file-chip', 'data-file-name': name },
    h('span', { class: 'file-icon', 'aria-hidden': 'true' }, fileBadge(name)),
    h(
      'span',
      { class: 'file-info' },
      h('span', { class: 'file-name', 'data-testid': 'file-name', title: name }, name),
      h('span', { class: 'file-meta', 'data-testid': 'file-meta' }, meta),
    ),
    download
      ? h(
          'a',
          {
            class: 'file-download',
            'data-testid': 'file-download',
            href: '#',
            'aria-label': `Download ${name} (${formatSize(file.size)})`,
            onclick: (e) => {
              e.preventDefault();
              download();
            },
          },
          'Download',
        )
      : h('span', { class: 'file-status' }, status || ''),
  );
}

/**
 * downloadFile fetches a signed link for attachment id with client and
 * opens it in a hidden <a download>, which saves the file (the server
 * sends it as an attachment). onError gets a failure to show.
 */
export async function downloadFile(client, att, onError) {
  try {
    const link = await client.attachmentLink(att.id);
    const a = document.createElement('a');
    a.href = client.baseURL + link.url;
    a.download = att.name || '';
    a.rel = 'noopener';
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
  } catch (err) {
    onError(err);
  }
}
