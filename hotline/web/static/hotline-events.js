/* The reader of the daemon's Server-Sent Events that the agent page (screen pop) and the
 * wallboard share. They open the stream with fetch, because EventSource cannot send a login or
 * a token; this reads its text/event-stream body until it ends, calling onEvent(kind, data) with
 * each event's parsed JSON (comment lines, the keep-alives, are skipped). */
window.hotlineReadEvents = async function readEvents(response, onEvent) {
  "use strict";
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let kind = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) kind = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(kind, JSON.parse(data.join("\n")));
    }
  }
};
