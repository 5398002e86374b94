# Outpost's bootstrap for python3.* functions: the standard library only.
#
# Started by the daemon (src/functions/runtime/python-process.ts) in the function's code directory
# with the Lambda variables set. It imports the handler named by _HANDLER (`module.function`, the
# module a dotted or slashed path under LAMBDA_TASK_ROOT), then loops on the Lambda Runtime API at
# AWS_LAMBDA_RUNTIME_API (`unix:PATH` for the daemon's private socket, or `host:port`): GET invocation/next, call the handler, POST its response or error.
# A handler that cannot be loaded is reported on init/error and the process exits.
import importlib
import io
import json
import logging
import os
import re
import resource
import signal
import socket
import sys
import time
import traceback

API_PREFIX = '/2018-06-01/runtime'
BOOTSTRAP_FILE = os.path.abspath(__file__)
# prctl(2): orphans below this process are reparented to it instead of init.
PR_SET_CHILD_SUBREAPER = 36


class Headers(dict):
    """Response headers by lower-case name."""

    def get(self, name, default=None):
        return super().get(name.lower(), default)


class RuntimeApi:
    """One keep-alive HTTP/1.1 connection to the daemon's Runtime API for this environment.

    A few lines of HTTP over a socket instead of http.client, whose imports (email, ssl) would
    double the start of every Python environment.
    """

    def __init__(self, address):
        self.address = address
        self.stream = None

    def connect(self):
        if self.address.startswith('unix:'):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.address[len('unix:'):])
        else:
            host, _, port = self.address.rpartition(':')
            sock = socket.create_connection((host, int(port)))
        return sock.makefile('rwb')

    def request(self, method, path, body=None, headers=None):
        for attempt in (1, 2):
            if self.stream is None:
                self.stream = self.connect()
            try:
                return self.exchange(method, API_PREFIX + path, body or b'', headers or {})
            except (ConnectionError, ValueError, OSError):
                self.discard_stream()
                if attempt == 2:
                    raise

    def discard_stream(self):
        # close() flushes what is buffered for the broken connection, and fails again on it
        try:
            self.stream.close()
        except OSError:
            pass
        self.stream = None

    def exchange(self, method, target, body, headers):
        lines = ['%s %s HTTP/1.1' % (method, target), 'Host: localhost', 'Content-Length: %d' % len(body)]
        lines.extend('%s: %s' % item for item in headers.items())
        self.stream.write(('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + body)
        self.stream.flush()
        status_line = self.stream.readline()
        if not status_line:
            raise ConnectionError('the Runtime API closed the connection')
        status = int(status_line.split(b' ', 2)[1])
        response_headers = Headers()
        while True:
            line = self.stream.readline()
            if line in (b'\r\n', b'\n', b''):
                break
            name, _, value = line.decode('latin-1').partition(':')
            response_headers[name.strip().lower()] = value.strip()
        if response_headers.get('transfer-encoding', '').lower() == 'chunked':
            chunks = []
            while True:
                size = int(self.stream.readline().split(b';')[0], 16)
                chunk = self.stream.read(size + 2)[:size]
                if size == 0:
                    break
                chunks.append(chunk)
            return status, response_headers, b''.join(chunks)
        return status, response_headers, self.stream.read(int(response_headers.get('content-length', '0')))

    def post_json(self, path, document, error_type=None, more_headers=None):
        headers = {'Content-Type': 'application/json', **(more_headers or {})}
        if error_type:
            headers['Lambda-Runtime-Function-Error-Type'] = error_type
        return self.request('POST', path, json.dumps(document).encode('utf-8'), headers)


class LambdaError(Exception):
    """A failure the runtime reports in its own words, with its own stack trace (none by default)."""

    def __init__(self, error_type, message, stack_trace=()):
        super().__init__(message)
        self.error_type = error_type
        self.stack_trace = list(stack_trace)


def object_from(cls, document):
    """An instance of `cls` whose attributes (its __slots__) are the document's keys of those names, None when absent."""
    instance = cls()
    for name in cls.__slots__:
        setattr(instance, name, document.get(name))
    return instance


# context.identity and context.client_context as the Python runtime (awslambdaric) builds them:
# objects with these attributes, not dictionaries.
class CognitoIdentity:
    __slots__ = ['cognito_identity_id', 'cognito_identity_pool_id']


class Client:
    __slots__ = ['installation_id', 'app_title', 'app_version_name', 'app_version_code', 'app_package_name']


class ClientContext:
    __slots__ = ['custom', 'env', 'client']

    @classmethod
    def parse(cls, document):
        """None for a JSON null, as the Python runtime's; anything else not an object fails the invocation (AttributeError)."""
        if document is None:
            return None
        context = object_from(cls, document)
        # MQTT triggers name it `Custom` (the Node.js context passes the document as it is).
        if context.custom is None:
            context.custom = document.get('Custom')
        if context.client is not None:
            context.client = object_from(Client, context.client)
        return context


class LambdaContext:
    def __init__(self, request_id, deadline_ms, invoked_function_arn, client_context, cognito_identity):
        self.aws_request_id = request_id
        self.function_name = os.environ.get('AWS_LAMBDA_FUNCTION_NAME')
        self.function_version = os.environ.get('AWS_LAMBDA_FUNCTION_VERSION')
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = os.environ.get('AWS_LAMBDA_FUNCTION_MEMORY_SIZE')
        self.log_group_name = os.environ.get('AWS_LAMBDA_LOG_GROUP_NAME')
        self.log_stream_name = os.environ.get('AWS_LAMBDA_LOG_STREAM_NAME')
        # Always an object; its attributes are None without a Cognito identity.
        self.identity = CognitoIdentity()
        self.identity.cognito_identity_id = cognito_identity.get('cognitoIdentityId')
        self.identity.cognito_identity_pool_id = cognito_identity.get('cognitoIdentityPoolId')
        self.client_context = client_context
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, message):
        # As the Python runtime's context.log: the text as it is, no newline added.
        sys.stdout.write(str(message))


class ResponseEncoder(json.JSONEncoder):
    """The Python runtime's marshaller writes a Decimal (as boto3 reads DynamoDB numbers) as the number it is."""

    def default(self, value):
        # Only a handler that imported decimal can return a Decimal: the bootstrap need not import it (a faster start).
        decimal = sys.modules.get('decimal')
        if decimal is not None and isinstance(value, decimal.Decimal):
            if value.is_nan():
                return float('nan')
            # A whole number exactly (a count reads back as 10, not 10.0, however many digits it has);
            # others as the nearest float, where the runtime writes the Decimal's own digits.
            if value.is_finite() and value.as_tuple().exponent >= 0:
                return int(value)
            return float(value)
        return super().default(value)


def escapes_non_ascii(execution_env):
    """Lambda's Python runtimes before 3.12 escape non-ASCII characters in a response (\\u00e9); later ones write them as UTF-8."""
    version = re.fullmatch(r'AWS_Lambda_python3\.(\d+)', execution_env or '')
    return version is None or int(version.group(1)) < 12


ENSURE_ASCII = escapes_non_ascii(os.environ.get('AWS_EXECUTION_ENV'))


def marshal(result):
    """The response body as the Python runtime's marshaller makes it: bytes as they are, anything else as JSON."""
    if isinstance(result, bytes):
        return result
    try:
        return json.dumps(result, cls=ResponseEncoder, ensure_ascii=ENSURE_ASCII).encode('utf-8')
    # Whatever fails the encoding: a set (TypeError), a circular reference (ValueError), nesting deeper than the interpreter's recursion limit.
    except Exception as error:
        raise LambdaError('Runtime.MarshalError', 'Unable to marshal response: %s' % error) from None


def invocation_context(request_id, headers):
    """The handler's context from the invocation's Runtime API headers."""
    client_context = headers.get('Lambda-Runtime-Client-Context')
    cognito_identity = headers.get('Lambda-Runtime-Cognito-Identity')
    return LambdaContext(
        request_id,
        int(headers.get('Lambda-Runtime-Deadline-Ms', '0')),
        headers.get('Lambda-Runtime-Invoked-Function-Arn'),
        ClientContext.parse(json.loads(client_context)) if client_context else None,
        json.loads(cognito_identity) if cognito_identity else {},
    )


def error_document(error, request_id=None):
    """The Python runtime's error shape: errorMessage, errorType, requestId ('' before any invocation), stackTrace."""
    if isinstance(error, LambdaError):
        error_type, stack_trace = error.error_type, error.stack_trace
    else:
        error_type, stack_trace = type(error).__name__, traceback.format_list(user_frames(error.__traceback__))
    return {'errorMessage': str(error), 'errorType': error_type, 'requestId': request_id or '', 'stackTrace': stack_trace}


def user_frames(trace):
    """The traceback from its first frame outside the bootstrap, as plain (file, line, function, text)
    tuples: formatted, they carry no column markers (the `^^^` lines of Python 3.11 and later), as
    in the Python runtime's stackTrace. A failure in the bootstrap's own call of the handler (a
    handler that takes one argument) has no such frame and keeps them all."""
    frames = [(frame.filename, frame.lineno, frame.name, frame.line) for frame in traceback.extract_tb(trace)]
    for index, (filename, _, _, _) in enumerate(frames):
        if os.path.abspath(filename) != BOOTSTRAP_FILE:
            return frames[index:]
    return frames


def load_handler(handler):
    module_path, dot, function_name = handler.rpartition('.')
    # Only a name without a dot is malformed, as the Python runtime splits it (rsplit): `app.` looks
    # for a handler '' on app, and `.handler` imports a module '' (ValueError: Empty module name).
    if not dot:
        raise LambdaError('Runtime.MalformedHandlerName', "Bad handler '%s': not enough values to unpack (expected 2, got 1)" % handler)
    # A module named as one built into the interpreter (time.py) would never be the function's own.
    # Checked on the name as written, as the Python runtime checks it: `time/x.handler` is no
    # conflict but an import error (time is not a package).
    if module_path.split('.')[0] in sys.builtin_module_names:
        raise LambdaError('Runtime.BuiltInModuleConflict', 'Cannot use built-in module %s as a handler module' % module_path)
    try:
        module = importlib.import_module(module_path.replace('/', '.'))
    # ImportError, not only ModuleNotFoundError: `from os import missing` fails the import as well.
    except ImportError as error:
        raise LambdaError('Runtime.ImportModuleError', "Unable to import module '%s': %s" % (module_path, error)) from None
    except SyntaxError as error:
        # The Python runtime's one frame: the file, the line and its text.
        frame = '  File "%s" Line %s\n    %s' % (error.filename, error.lineno, error.text)
        raise LambdaError('Runtime.UserCodeSyntaxError', "Syntax error in module '%s': %s" % (module_path, error), [frame]) from None
    if not hasattr(module, function_name):
        raise LambdaError('Runtime.HandlerNotFound', "Handler '%s' missing on module '%s'" % (function_name, module_path))
    function = getattr(module, function_name)
    # Lambda's Python runtime takes it and fails each invocation with TypeError ('int' object is not
    # callable); refused here, where a handler that does not load refuses the deploy.
    if not callable(function):
        raise LambdaError('Runtime.HandlerNotFound', "Handler '%s' on module '%s' is not callable ('%s' object)" % (function_name, module_path, type(function).__name__))
    return function


class CountedOutput(io.RawIOBase):
    """A standard stream's descriptor, counting the bytes written to it. The daemon reads stdout and
    stderr apart from the answers, and waits to act on one until it has read as far as the answer's
    Outpost-Output-Written header says: else a handler's last lines came after its END whenever they
    filled the pipe."""

    def __init__(self, fd):
        super().__init__()
        self.fd = fd
        self.written = 0

    def writable(self):
        return True

    def fileno(self):
        return self.fd

    def write(self, data):
        view = memoryview(data).cast('B')
        offset = 0
        while offset < len(view):
            offset += os.write(self.fd, view[offset:])
        self.written += offset
        return offset

    def close(self):
        # the descriptor is the process's, as the standard stream's was
        self.flush()


def count_output():
    """sys.stdout and sys.stderr over CountedOutput, written through as -u wrote them."""
    counted = []
    for name in ('stdout', 'stderr'):
        stream = getattr(sys, name)
        raw = CountedOutput(stream.fileno())
        setattr(sys, name, io.TextIOWrapper(raw, encoding=stream.encoding, errors=stream.errors, write_through=True))
        counted.append(raw)
    return counted


def output_written(counted):
    return {'Outpost-Output-Written': '%d %d' % tuple(raw.written for raw in counted)}


class RequestIdFilter(logging.Filter):
    request_id = None

    def filter(self, record):
        # Empty before the first invocation (the module's own lines), as the Python runtime writes it.
        record.aws_request_id = RequestIdFilter.request_id or ''
        return True


def setup_logging():
    # The line ends with the handler's terminator: the Python runtime's format ends it with \n and writes
    # no terminator; a StreamHandler adds one, and each record was followed by an empty line. A record
    # with a traceback (logger.exception) ends with a newline too, not joined to what comes next.
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RequestIdFilter())
    formatter = logging.Formatter('[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s', '%Y-%m-%dT%H:%M:%S')
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    # Lambda's Python runtime (without advanced logging controls) leaves the root logger at Python's
    # WARNING: logging.info() shows only once the function lowers it (logger.setLevel(logging.INFO)).


def limit_memory():
    # MemorySize bounds the process's address space: an allocation beyond it raises MemoryError
    # in the handler (an error of that invocation) instead of taking memory from the gateway.
    megabytes = os.environ.get('AWS_LAMBDA_FUNCTION_MEMORY_SIZE')
    if megabytes and megabytes.isdigit():
        limit = int(megabytes) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def children():
    """The pids whose parent is this process, read from /proc (the kernel may have no children files)."""
    me = os.getpid()
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry, 'rb') as stat:
                fields = stat.read()
        except OSError:
            continue
        # after the command name, which may hold spaces and parentheses: state, ppid, …
        if int(fields[fields.rindex(b')') + 2:].split()[1]) == me:
            found.append(int(entry))
    return found


def end_descendants():
    """SIGKILL to every process below this one, until none is left: as each dies its children are adopted here."""
    while True:
        for pid in children():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.wait()
        except ChildProcessError:
            return


def exit_as(status):
    """Ends this process as the runtime's ended (the daemon reports it: exit status 3, signal: killed)."""
    if not os.WIFSIGNALED(status):
        os._exit(os.WEXITSTATUS(status))
    number = os.WTERMSIG(status)
    # the runtime dumped its core, if any: not a second one of this process
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Python ignores SIGPIPE and SIGXFSZ; SIGKILL has no disposition to set
    if number != signal.SIGKILL:
        signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)
    os._exit(128 + number)


def keep_descendants():
    """Returns in a child process that runs the runtime; this one stays above it to the end.

    Lambda ends every process of an environment with it. The daemon ends the process it started
    and every process below it (by parent), also those that left its process group (a
    subprocess.Popen started with start_new_session=True, a process that called os.setsid()). A
    child subreaper, this process adopts what is orphaned below it (a daemon that forks twice), which
    init would adopt otherwise, so those stay below it too. It reaps them: its only own child is the
    runtime, so a blanket wait takes no exit status from the runtime's own waits (Popen.wait()), as
    it would in the runtime's process. When the runtime exits, it ends what is left below it.
    """
    try:
        import ctypes
        if ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            return
    except (ImportError, OSError, AttributeError):
        # no prctl (not Linux): the runtime runs in this process, its orphans go to init
        return
    runtime = os.fork()
    if runtime == 0:
        return
    while True:
        pid, status = os.wait()
        if pid == runtime:
            break
    end_descendants()
    exit_as(status)


def main():
    keep_descendants()
    limit_memory()
    api = RuntimeApi(os.environ['AWS_LAMBDA_RUNTIME_API'])
    task_root = os.environ.get('LAMBDA_TASK_ROOT', os.getcwd())
    if task_root not in sys.path:
        sys.path.insert(0, task_root)
    counted = count_output()
    setup_logging()
    try:
        handler = load_handler(os.environ['_HANDLER'])
    except Exception as error:
        document = error_document(error)
        api.post_json('/init/error', document, document['errorType'], output_written(counted))
        sys.exit(1)

    while True:
        # the daemon reads this process's peak memory (Max Memory Used): the one it started stays above it
        status, headers, body = api.request('GET', '/invocation/next', headers={'Outpost-Runtime-Pid': str(os.getpid())})
        if status != 200:
            sys.stderr.write('Runtime API answered %d to invocation/next\n' % status)
            sys.exit(1)
        request_id = headers.get('Lambda-Runtime-Aws-Request-Id')
        RequestIdFilter.request_id = request_id
        # As the Python runtime sets it for each invocation (the X-Ray SDK reads it).
        trace_id = headers.get('Lambda-Runtime-Trace-Id')
        if trace_id:
            os.environ['_X_AMZN_TRACE_ID'] = trace_id
        else:
            os.environ.pop('_X_AMZN_TRACE_ID', None)
        # The context is made inside the invocation, as the Python runtime makes it: a client context it
        # cannot read fails this invocation, not the environment.
        try:
            payload = marshal(handler(json.loads(body or b'null'), invocation_context(request_id, headers)))
        except Exception as error:
            document = error_document(error, request_id)
            api.post_json('/invocation/%s/error' % request_id, document, document['errorType'], output_written(counted))
            continue
        api.request('POST', '/invocation/%s/response' % request_id, payload, {'Content-Type': 'application/json', **output_written(counted)})


if __name__ == '__main__':
    main()
