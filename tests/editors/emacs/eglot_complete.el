;;; eglot_complete.el --- eglot gets a nearcode completion through textDocument/completion -*- lexical-binding: t -*-
;; Run: emacs -Q --batch -l eglot_complete.el, with the environment variables
;;   NC_NEARCODE (path of `nearcode`), NC_FILE, NC_LINE (1-based), NC_OUT (JSON report).
;; Debian's emacs-nox + elpa-eglot: the packages live under /usr/share/emacs/site-lisp/elpa.
(dolist (dir (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa/*"))
  (add-to-list 'load-path dir))
(require 'json)

(defvar nc-report nil)
(defun nc-put (key value) (push (cons key value) nc-report))
(defun nc-finish ()
  (with-temp-file (getenv "NC_OUT")
    (insert (json-encode nc-report))))

(condition-case err
    (progn
      (require 'eglot)
      (nc-put 'eglot_version (if (boundp 'eglot-version) eglot-version "?"))
      (setq eglot-server-programs
            `((python-mode . (,(getenv "NC_NEARCODE") "lsp" "--stdio"))))
      ;; A cold model on a busy 2-core machine can take longer than jsonrpc's 10 s default.
      (setq jsonrpc-default-request-timeout 40)
      (setq eglot-sync-connect t
            eglot-connect-timeout 30
            eglot-autoshutdown t)
      (find-file (getenv "NC_FILE"))
      (python-mode)
      (apply #'eglot (eglot--guess-contact))
      (let ((server (eglot-current-server)))
        (nc-put 'connected (and server (jsonrpc-running-p server) t))
        (nc-put 'completion_provider
                (and server (eglot--server-capable :completionProvider) t)))
      ;; Point at the end of the loop body's line, as if the user had just typed it.
      (goto-char (point-min))
      (forward-line (1- (string-to-number (getenv "NC_LINE"))))
      (end-of-line)
      (nc-put 'line_before (buffer-substring-no-properties
                            (line-beginning-position) (line-end-position)))
      ;; Standard completion: eglot's completion-at-point function asks textDocument/completion.
      (let* ((capf (eglot-completion-at-point))
             (table (nth 2 capf))
             (candidates (and table (all-completions "" table))))
        (nc-put 'candidates (vconcat (mapcar #'substring-no-properties candidates))))
      ;; And the editor inserts it (a single candidate is inserted directly).
      (let ((completion-styles '(basic))
            (completion-auto-help nil))
        (completion-at-point))
      (nc-put 'line_after (buffer-substring-no-properties
                           (line-beginning-position) (line-end-position)))
      (nc-put 'buffer (buffer-substring-no-properties (point-min) (point-max)))
      (set-buffer-modified-p nil)
      (eglot-shutdown (eglot-current-server)))
  (error (nc-put 'elisp_error (format "%S" err))))
(nc-finish)
(kill-emacs 0)
