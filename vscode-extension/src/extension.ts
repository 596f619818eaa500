// nearcode for VS Code: starts `nearcode lsp --stdio`, shows its inline completions as ghost
// text, a status bar item, palette commands, and reports shown / accepted suggestions.
// The logic that does not need VS Code lives in discovery.ts, settings.ts, status.ts,
// restart.ts, tracker.ts and results.ts (unit-tested with Node's test runner).
import * as vscode from 'vscode';
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  NotificationType,
  ResponseError,
  ServerOptions,
  State,
  TransportKind,
} from 'vscode-languageclient/node';

import { findServer, notFoundMessage } from './discovery';
import { contextDocument } from './context';
import {
  type ContextResult,
  FOCUS_NOTIFICATION,
  SERVER_COMMANDS,
  STATUS_NOTIFICATION,
  type StatusResult,
} from './protocol.generated';
import { RestartPolicy } from './restart';
import { describeCommandResult } from './results';
import {
  configurationFor,
  didChangeConfigurationParams,
  ExtensionSettings,
  ignoredWorkspaceSettings,
  initializationOptions,
  isLanguageEnabled,
  needsRestart,
  readSettings,
  toggleLanguage,
} from './settings';
import { ClientPhase, mergeStatus, StatusNotification, statusView } from './status';
import { ACCEPT_COMMAND, AcceptKind, PartialReport, SuggestionTracker, WireInlineItem } from './tracker';

const SECTION = 'nearcode';
const StatusNotificationType = new NotificationType<StatusNotification>(STATUS_NOTIFICATION);
const DidShowCompletion = new NotificationType<{ item: WireInlineItem }>('textDocument/didShowCompletion');
const DidPartiallyAcceptCompletion = new NotificationType<PartialReport>('textDocument/didPartiallyAcceptCompletion');
const DidFocus = new NotificationType<{ textDocument: { uri: string }; position?: vscode.Position }>(FOCUS_NOTIFICATION);

/** Server commands run from the palette: [server command, human name]. */
const SERVER_ACTIONS = {
  generateDocstring: [SERVER_COMMANDS.generateDocstring, 'generate docstring'],
  generateTests: [SERVER_COMMANDS.generateTests, 'generate unit tests'],
  askCloud: [SERVER_COMMANDS.askCloud, 'ask the cloud model'],
} as const;
const SERVER_ACTION_COMMANDS = new Set<string>([
  ...Object.values(SERVER_ACTIONS).map(([command]) => command),
  SERVER_COMMANDS.previewCloudPayload,
]);

/** The read-only document `nearcode.showContext` fills (its .md name makes it Markdown). */
class ContextReport implements vscode.TextDocumentContentProvider {
  static readonly scheme = 'nearcode-context';
  static readonly uri = vscode.Uri.from({ scheme: ContextReport.scheme, path: '/nearcode context.md' });
  private text = '';
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  set(text: string): void {
    this.text = text;
    this.changed.fire(ContextReport.uri);
  }

  provideTextDocumentContent(): string {
    return this.text;
  }
}

class Nearcode implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private phase: ClientPhase = 'starting';
  private server: StatusNotification = {};
  private settings: ExtensionSettings;
  private readonly policy = new RestartPolicy(3, 60_000);
  private readonly tracker = new SuggestionTracker();
  private readonly output: vscode.LogOutputChannel;
  private readonly statusItem: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];
  private clientDisposables: vscode.Disposable[] = [];
  private fallbackAcceptCommand: vscode.Disposable | undefined;
  private starting: Promise<void> | undefined;
  private readonly contextReport = new ContextReport();

  constructor(private readonly context: vscode.ExtensionContext) {
    this.settings = this.readSettings();
    this.output = vscode.window.createOutputChannel('nearcode', { log: true });
    this.statusItem = vscode.window.createStatusBarItem('nearcode.status', vscode.StatusBarAlignment.Right, 100);
    this.statusItem.name = 'nearcode';
    this.statusItem.command = 'nearcode.showMenu';
    this.statusItem.show();
    this.disposables.push(
      this.output,
      this.statusItem,
      vscode.workspace.registerTextDocumentContentProvider(ContextReport.scheme, this.contextReport),
    );
    this.registerCommands();
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(SECTION)) void this.onSettingsChanged();
      }),
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        this.render();
        this.focused(editor);
      }),
      vscode.workspace.onDidCloseTextDocument((doc) => this.tracker.clear(doc.uri.toString())),
    );
    this.render();
  }

  private warnedIgnored = '';

  /** The settings that count: machine-scoped ones only from the user's own settings (inspect()),
   *  whatever a repository's .vscode/settings.json says; the user is told once what was ignored. */
  private readSettings(): ExtensionSettings {
    const cfg = vscode.workspace.getConfiguration(SECTION);
    const inspect = (key: string) => cfg.inspect(key);
    const ignored = ignoredWorkspaceSettings(inspect).join(', ');
    if (ignored && ignored !== this.warnedIgnored) {
      this.warnedIgnored = ignored;
      void vscode.window.showWarningMessage(
        `nearcode: ignored ${ignored} from this workspace's settings: only your user settings may set them.`,
      );
    }
    return readSettings(inspect);
  }

  private log(message: string): void {
    this.output.info(message);
  }

  // ---------------------------------------------------------------- status bar

  private render(): void {
    const editor = vscode.window.activeTextEditor;
    const languageId = editor?.document.languageId;
    let disabledHere: 'global' | 'language' | undefined;
    if (!this.settings.server.enable) disabledHere = 'global';
    else if (languageId && !isLanguageEnabled(this.settings, languageId)) disabledHere = 'language';
    const view = statusView({ phase: this.phase, server: this.server, disabledHere, languageId });
    this.statusItem.text = view.text;
    this.statusItem.tooltip = view.tooltip;
    this.statusItem.backgroundColor = view.background ? new vscode.ThemeColor(view.background) : undefined;
    this.statusItem.accessibilityInformation = { label: view.tooltip.split('\n')[0] };
  }

  private setPhase(phase: ClientPhase): void {
    this.phase = phase;
    this.render();
  }

  // ---------------------------------------------------------------- client lifecycle

  start(): Promise<void> {
    if (!this.starting) {
      this.starting = this.doStart().finally(() => {
        this.starting = undefined;
      });
    }
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.settings = this.readSettings();
    const folders = (vscode.workspace.workspaceFolders ?? [])
      .filter((f) => f.uri.scheme === 'file')
      .map((f) => f.uri.fsPath);
    const result = findServer({
      configuredPath: this.settings.serverPath,
      workspaceFolders: folders,
      envPath: process.env.PATH,
    });
    if (!result.found) {
      this.log(`server not found; looked at:\n  ${result.tried.join('\n  ')}`);
      this.server = { message: 'language server not found' };
      this.setPhase('not-found');
      const msg = notFoundMessage(result);
      void vscode.window.showWarningMessage(msg, 'Open Settings', 'Retry', 'Open Log').then((choice) => {
        if (choice === 'Open Settings') {
          void vscode.commands.executeCommand('workbench.action.openSettings', 'nearcode.serverPath');
        } else if (choice === 'Retry') {
          void this.restart();
        } else if (choice === 'Open Log') {
          this.output.show(true);
        }
      });
      return;
    }
    this.log(`starting ${result.found.command} lsp --stdio (found via ${result.found.source})`);

    const serverOptions: ServerOptions = {
      command: result.found.command,
      // vscode-languageclient appends `--stdio` for TransportKind.stdio.
      args: ['lsp'],
      transport: TransportKind.stdio,
      options: { cwd: folders[0], env: { ...process.env } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      initializationOptions: initializationOptions(this.settings),
      outputChannel: this.output,
      revealOutputChannelOn: 4 /* RevealOutputChannelOn.Never */,
      errorHandler: {
        error: (_error, _message, count) =>
          count !== undefined && count <= 3 ? { action: ErrorAction.Continue } : { action: ErrorAction.Shutdown },
        closed: () => {
          const d = this.policy.onClosed(Date.now());
          this.log(d.restart ? `server died; restarting (${d.attempt} of ${this.policy.maxRestarts})` : 'server died; not restarting');
          if (!d.restart) {
            this.server = { ...this.server, message: 'language server stopped' };
            this.setPhase('failed');
            return { action: CloseAction.DoNotRestart, message: d.message };
          }
          // Forget the dead server's state: the new one reports its own.
          this.server = { ...this.server, state: 'loading', message: `restarting (${d.attempt} of ${this.policy.maxRestarts})` };
          this.setPhase('starting');
          return { action: CloseAction.Restart, handled: true };
        },
      },
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          if (!isLanguageEnabled(this.settings, document.languageId)) return null;
          const result = await next(document, position, context, token);
          if (!result || token.isCancellationRequested) return result;
          const items = Array.isArray(result) ? result : result.items;
          // LSP: an item without a range is inserted at the cursor. VS Code would instead replace
          // the word before the cursor up to the end of the line, and then hide the suggestion.
          for (const item of items) {
            if (!item.range) item.range = new vscode.Range(position, position);
          }
          if (items.length > 0) this.reportShown(document, position, items[0]);
          return result;
        },
        executeCommand: async (command, args, next) => {
          if (command === ACCEPT_COMMAND) this.tracker.accepted(args[0]);
          const result = await next(command, args);
          // Code actions (light bulb) run these through here; their results are otherwise unseen.
          if (SERVER_ACTION_COMMANDS.has(command)) {
            this.showCommandResult(command, result).catch((err) => this.log(`${command}: ${errorMessage(err)}`));
          }
          return result;
        },
        workspace: {
          configuration: (params, _token, _next) =>
            params.items.map((item) => configurationFor(this.settings, item.section)),
        },
      },
    };

    const client = new LanguageClient('nearcode', 'nearcode', serverOptions, clientOptions);
    this.client = client;
    this.clientDisposables.push(
      client.onNotification(StatusNotificationType, (status) => {
        this.server = mergeStatus(this.server, status ?? {});
        this.render();
      }),
      client.onDidChangeState((e) => {
        if (e.newState === State.Running) {
          this.policy.onRunning(Date.now());
          this.setPhase('running');
        } else if (e.newState === State.Starting) {
          this.setPhase('starting');
        }
      }),
    );
    this.setPhase('starting');
    try {
      await client.start();
    } catch (err) {
      this.log(`server failed to start: ${errorMessage(err)}`);
      this.server = { ...this.server, message: `failed to start: ${errorMessage(err)}` };
      this.setPhase('failed');
      return;
    }
    this.ensureAcceptCommand(client);
    // Settings may have changed while the server was starting.
    this.sendSettings();
  }

  /** Items carry `nearcode.didAcceptCompletion`; vscode-languageclient registers it when the
   *  server lists it in executeCommandProvider. If it does not, forward it ourselves. */
  private ensureAcceptCommand(client: LanguageClient): void {
    const listed = client.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
    this.fallbackAcceptCommand?.dispose();
    this.fallbackAcceptCommand = undefined;
    if (listed.includes(ACCEPT_COMMAND)) return;
    this.fallbackAcceptCommand = vscode.commands.registerCommand(ACCEPT_COMMAND, async (...args: unknown[]) => {
      this.tracker.accepted(args[0]);
      try {
        await this.client?.sendRequest(ExecuteCommandRequest.type, { command: ACCEPT_COMMAND, arguments: args });
      } catch (err) {
        this.log(`${ACCEPT_COMMAND} failed: ${errorMessage(err)}`);
      }
    });
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.clientDisposables.forEach((d) => d.dispose());
    this.clientDisposables = [];
    this.fallbackAcceptCommand?.dispose();
    this.fallbackAcceptCommand = undefined;
    if (client) {
      try {
        if (client.needsStop()) await client.stop(3000);
      } catch (err) {
        this.log(`stopping the server: ${errorMessage(err)}`);
      }
      await client.dispose(1000).catch(() => undefined);
    }
  }

  async restart(): Promise<void> {
    this.log('restart');
    this.policy.reset();
    await this.starting?.catch(() => undefined);
    await this.stop();
    this.server = {};
    await this.start();
  }

  private sendSettings(): void {
    const client = this.client;
    if (!client || !client.isRunning()) return;
    void client
      .sendNotification(DidChangeConfigurationNotification.type, didChangeConfigurationParams(this.settings))
      .catch((err) => this.log(`didChangeConfiguration: ${errorMessage(err)}`));
  }

  private async onSettingsChanged(): Promise<void> {
    const before = this.settings;
    this.settings = this.readSettings();
    this.render();
    if (needsRestart(before, this.settings)) {
      await this.restart();
    } else {
      this.sendSettings();
    }
  }

  // ---------------------------------------------------------------- reporting

  private toWire(item: vscode.InlineCompletionItem): WireInlineItem {
    const client = this.client!;
    const wire: WireInlineItem = {
      insertText: typeof item.insertText === 'string' ? item.insertText : { kind: 'snippet', value: item.insertText.value },
    };
    if (item.filterText !== undefined) wire.filterText = item.filterText;
    if (item.range) wire.range = client.code2ProtocolConverter.asRange(item.range);
    if (item.command) {
      wire.command = { title: item.command.title, command: item.command.command, arguments: item.command.arguments };
    }
    return wire;
  }

  private reportShown(document: vscode.TextDocument, position: vscode.Position, item: vscode.InlineCompletionItem): void {
    const client = this.client;
    if (!client || !client.isRunning()) return;
    const wire = this.toWire(item);
    const base = item.range ? Math.max(0, document.offsetAt(position) - document.offsetAt(item.range.start)) : 0;
    if (!this.tracker.shown(document.uri.toString(), wire, base)) return;
    void client.sendNotification(DidShowCompletion, { item: wire }).catch(() => undefined);
  }

  /** Runs VS Code's accept-next-word / accept-next-line and reports what it inserted. */
  private async acceptPart(builtin: string, kind: AcceptKind): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return vscode.commands.executeCommand(builtin);
    const uri = editor.document.uri.toString();
    let inserted = 0;
    const sub = vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.document.uri.toString() !== uri) return;
      for (const c of e.contentChanges) inserted += Math.max(0, c.text.length - c.rangeLength);
    });
    try {
      await vscode.commands.executeCommand(builtin);
    } finally {
      sub.dispose();
    }
    const report = this.tracker.partiallyAccepted(uri, inserted, kind);
    if (report && this.client?.isRunning()) {
      void this.client.sendNotification(DidPartiallyAcceptCompletion, report).catch(() => undefined);
    }
  }

  // ---------------------------------------------------------------- commands

  private registerCommands(): void {
    const reg = (id: string, fn: (...args: any[]) => unknown) =>
      this.disposables.push(vscode.commands.registerCommand(id, fn));
    reg('nearcode.toggle', () => this.toggleGlobal());
    reg('nearcode.toggleLanguage', () => this.toggleThisLanguage());
    reg('nearcode.trigger', () => vscode.commands.executeCommand('editor.action.inlineSuggest.trigger'));
    reg('nearcode.acceptNextWord', () => this.acceptPart('editor.action.inlineSuggest.acceptNextWord', 'word'));
    reg('nearcode.acceptNextLine', () => this.acceptPart('editor.action.inlineSuggest.acceptNextLine', 'line'));
    reg('nearcode.restart', () => this.restart());
    reg('nearcode.openLog', () => this.output.show(true));
    reg('nearcode.showMenu', () => this.showMenu());
    reg('nearcode.showServerStatus', () => this.showServerStatus());
    reg('nearcode.action.showContext', () => this.showContext());
    reg('nearcode.action.generateDocstring', () => this.runServerAction('generateDocstring'));
    reg('nearcode.action.generateTests', () => this.runServerAction('generateTests'));
    reg('nearcode.action.askCloud', () => this.runServerAction('askCloud'));
  }

  private async toggleGlobal(): Promise<void> {
    const cfg = vscode.workspace.getConfiguration(SECTION);
    const next = !this.settings.server.enable;
    await cfg.update('enable', next, vscode.ConfigurationTarget.Global);
    void vscode.window.setStatusBarMessage(`nearcode: completions turned ${next ? 'on' : 'off'}`, 3000);
  }

  private async toggleThisLanguage(): Promise<void> {
    const languageId = vscode.window.activeTextEditor?.document.languageId;
    if (!languageId) {
      void vscode.window.showInformationMessage('nearcode: open a file to turn completions on or off for its language.');
      return;
    }
    const cfg = vscode.workspace.getConfiguration(SECTION);
    const next = toggleLanguage(this.settings.server.disabledLanguages, languageId);
    await cfg.update('disabledLanguages', next, vscode.ConfigurationTarget.Global);
    const off = next.includes(languageId.toLowerCase());
    void vscode.window.setStatusBarMessage(`nearcode: completions turned ${off ? 'off' : 'on'} for ${languageId}`, 3000);
  }

  private async showMenu(): Promise<void> {
    type Item = vscode.QuickPickItem & { run: () => unknown };
    const languageId = vscode.window.activeTextEditor?.document.languageId;
    const globalOn = this.settings.server.enable;
    const items: Item[] = [
      {
        label: globalOn ? '$(circle-slash) Turn completions off' : '$(check) Turn completions on',
        description: 'everywhere',
        run: () => this.toggleGlobal(),
      },
    ];
    if (languageId) {
      const langOff = this.settings.server.disabledLanguages.includes(languageId.toLowerCase());
      items.push({
        label: langOff ? `$(check) Turn completions on for ${languageId}` : `$(circle-slash) Turn completions off for ${languageId}`,
        description: 'this language',
        run: () => this.toggleThisLanguage(),
      });
    }
    items.push(
      { label: '$(output) Open log', run: () => this.output.show(true) },
      { label: '$(debug-restart) Restart language server', run: () => this.restart() },
      { label: '$(info) Show server status', run: () => this.showServerStatus() },
      { label: '$(gear) Settings', run: () => vscode.commands.executeCommand('workbench.action.openSettings', '@ext:nearcode.nearcode') },
    );
    const pick = await vscode.window.showQuickPick(items, { title: 'nearcode', placeHolder: this.statusItem.tooltip?.toString().split('\n')[0] });
    if (pick) await pick.run();
  }

  private requireClient(): LanguageClient | undefined {
    if (this.client?.isRunning()) return this.client;
    void vscode.window.showWarningMessage(
      this.phase === 'not-found'
        ? 'nearcode: the language server is not running (it was not found). Run "nearcode: Restart Language Server" after installing it.'
        : 'nearcode: the language server is not running. See "nearcode: Open Log".',
    );
    return undefined;
  }

  private async showServerStatus(): Promise<void> {
    const client = this.requireClient();
    if (!client) return;
    try {
      const s = (await client.sendRequest(ExecuteCommandRequest.type, {
        command: SERVER_COMMANDS.status,
        arguments: [],
      })) as Partial<StatusResult> | null;
      const parts = [
        `state ${s?.state ?? '?'}`,
        `engine ${s?.engine ?? '?'}`,
        `model ${s?.model ?? '?'}`,
        `shown ${s?.shown ?? 0}`,
        `accepted ${s?.accepted ?? 0}`,
        `partially accepted ${s?.partiallyAccepted ?? 0}`,
        `alternatives offered ${s?.alternativesOffered ?? 0}`,
      ];
      void vscode.window.showInformationMessage(`nearcode: ${parts.join(', ')}`);
    } catch (err) {
      void vscode.window.showErrorMessage(serverErrorMessage(err));
    }
  }

  /** The editor shows another document: let the server read its prompt's stable part ahead. */
  private focused(editor: vscode.TextEditor | undefined): void {
    if (!editor || !this.client?.isRunning() || editor.document.uri.scheme !== 'file') return;
    const { line, character } = editor.selection.active;
    void this.client
      .sendNotification(DidFocus, { textDocument: { uri: editor.document.uri.toString() }, position: new vscode.Position(line, character) })
      .catch(() => undefined);
  }

  /** What the last completion in the active document was given, in a document beside it. */
  private async showContext(): Promise<void> {
    const client = this.requireClient();
    if (!client) return;
    const uri = vscode.window.activeTextEditor?.document.uri.toString();
    try {
      const result = (await client.sendRequest(ExecuteCommandRequest.type, {
        command: SERVER_COMMANDS.showContext,
        arguments: uri ? [{ uri }] : [],
      })) as Partial<ContextResult> | null;
      // A read-only virtual document: shown again it refreshes in place, closed it asks nothing
      // (an untitled document would be dirty and offer to be saved).
      this.contextReport.set(contextDocument(result));
      const doc = await vscode.workspace.openTextDocument(ContextReport.uri);
      await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: true, preserveFocus: true });
    } catch (err) {
      void vscode.window.showErrorMessage(serverErrorMessage(err));
    }
  }

  private async runServerAction(action: keyof typeof SERVER_ACTIONS): Promise<void> {
    const [command, name] = SERVER_ACTIONS[action];
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage(`nearcode: open a file to ${name}.`);
      return;
    }
    const client = this.requireClient();
    if (!client) return;
    const uri = editor.document.uri.toString();
    let arg: Record<string, unknown>;
    if (action === 'askCloud') {
      const task = await vscode.window.showInputBox({
        title: 'nearcode: ask the cloud model',
        prompt: 'What should the cloud model do with the selection (or the current line)?',
        ignoreFocusOut: true,
      });
      if (task === undefined) return;
      const sel = editor.selection;
      const range = sel.isEmpty ? editor.document.lineAt(sel.active.line).range : sel;
      arg = { uri, range: client.code2ProtocolConverter.asRange(range), task };
    } else {
      arg = { uri, position: client.code2ProtocolConverter.asPosition(editor.selection.active) };
    }
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: `nearcode: ${name}` },
        () => client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] }),
      );
      await this.showCommandResult(command, result);
    } catch (err) {
      void vscode.window.showWarningMessage(serverErrorMessage(err));
    }
  }

  /** A string result opens beside the editor; a structured one (dict with offered / run / sent …)
   *  becomes a one-line message, a warning or an error when the outcome calls for it. */
  private async showCommandResult(command: string, result: unknown): Promise<void> {
    if (typeof result === 'string') {
      if (result.trim()) await this.openBeside(result, 'markdown');
      return;
    }
    const message = describeCommandResult(result, command);
    if (!message) return;
    this.log(`${command}: ${message.text}`);
    if (message.level === 'error') void vscode.window.showErrorMessage(message.text);
    else if (message.level === 'warning') void vscode.window.showWarningMessage(message.text);
    else void vscode.window.showInformationMessage(message.text);
    if (message.detail) await this.openBeside(message.detail, message.detailLanguage ?? 'markdown');
  }

  private async openBeside(content: string, language: string): Promise<void> {
    const doc = await vscode.workspace.openTextDocument({ content, language });
    await vscode.window.showTextDocument(doc, vscode.ViewColumn.Beside);
  }

  dispose(): void {
    void this.stop();
    this.disposables.forEach((d) => d.dispose());
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The server's own words, prefixed once with "nearcode:". */
function serverErrorMessage(err: unknown): string {
  const msg = err instanceof ResponseError || err instanceof Error ? err.message : String(err);
  return /^nearcode\b/i.test(msg) ? msg : `nearcode: ${msg}`;
}

let instance: Nearcode | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  instance = new Nearcode(context);
  context.subscriptions.push(instance);
  void instance.start();
}

export async function deactivate(): Promise<void> {
  const it = instance;
  instance = undefined;
  if (it) await it.stop();
}
