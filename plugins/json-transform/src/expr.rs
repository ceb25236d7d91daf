//! json-transform's expression language: parsing and evaluation.
//!
//! An expression computes one JSON value from the current value (`$`) and
//! the step's whole input (`$$`):
//!
//! * paths: `$`, `$$`, `$.a.b`, `$["key with space"]`, `$.items[0]`,
//!   `$.items[-1]` (from the end), `$.items[*].price` (a projection: the
//!   array of every item's price; items without one are skipped). A path
//!   that leads nowhere is `null`. Segments may follow any value:
//!   `split($.name, " ")[0]`, `($.a).b`.
//! * literals: numbers (`2`, `-1.5`, `1e3`), strings (`"text"` or
//!   `'text'`, JSON escapes), `true`, `false`, `null`.
//! * operators, loosest first: `||`; `&&`; `== != < <= > >=` (no chaining);
//!   `+ -`; `* / %`; unary `! -`; then path segments. `+` adds numbers or
//!   joins two strings; `== !=` compare any values (`1 == 1.0`);
//!   `< <= > >=` compare two numbers or two strings; `&&`, `||`, `!` take
//!   truthiness (`null`, `false`, `0`, `""`, `[]`, `{}` are false) and give
//!   booleans. Anything else is a type error.
//! * functions: see [`FUNCS`] and the integration page
//!   `knowledge/integrations/json-transform.md`.
//!
//! Whole-number results of arithmetic are integers (`6 / 3` is `2`);
//! integer `+ - * %` are exact.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// How deeply parentheses, function calls and unary operators may nest.
pub const MAX_DEPTH: usize = 64;

/// Most arguments `min` and `max` take.
const MAX_ARGS: usize = 64;

/// A parse or evaluation error, at a 1-based character column of the
/// expression (the operator or function that failed, when evaluating).
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub column: usize,
    pub message: String,
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, Error> {
    Err(Error {
        column,
        message: message.into(),
    })
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    /// A path: a base and zero or more segments.
    Path(Base, Vec<Seg>),
    /// Unary minus, at a column.
    Neg(Box<Expr>, usize),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
        column: usize,
    },
    Call {
        func: Func,
        args: Vec<Expr>,
        column: usize,
    },
}

/// Where a path starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Base {
    /// `$`
    Current,
    /// `$$`
    Root,
    /// Any other value: `keys($)[0]`.
    Value(Box<Expr>),
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    /// `.name` or `["name"]`
    Key(String),
    /// `[n]`; negative counts from the end.
    Index(i64),
    /// `[*]` or `.*`: every element of an array, every value of an object.
    Wild,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinOp {
    fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
        }
    }
}

/// The built-in functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Abs,
    Avg,
    Contains,
    Default,
    Exists,
    Filter,
    If,
    Join,
    Keys,
    Len,
    Lower,
    Map,
    Max,
    Min,
    Number,
    Round,
    Split,
    String,
    Sum,
    Trim,
    Upper,
}

/// Every function: name, function, fewest and most arguments.
pub const FUNCS: [(&str, Func, usize, usize); 21] = [
    ("abs", Func::Abs, 1, 1),
    ("avg", Func::Avg, 1, 1),
    ("contains", Func::Contains, 2, 2),
    ("default", Func::Default, 2, 2),
    ("exists", Func::Exists, 1, 1),
    ("filter", Func::Filter, 2, 2),
    ("if", Func::If, 2, 3),
    ("join", Func::Join, 1, 2),
    ("keys", Func::Keys, 1, 1),
    ("len", Func::Len, 1, 1),
    ("lower", Func::Lower, 1, 1),
    ("map", Func::Map, 2, 2),
    ("max", Func::Max, 1, MAX_ARGS),
    ("min", Func::Min, 1, MAX_ARGS),
    ("number", Func::Number, 1, 1),
    ("round", Func::Round, 1, 2),
    ("split", Func::Split, 2, 2),
    ("string", Func::String, 1, 1),
    ("sum", Func::Sum, 1, 1),
    ("trim", Func::Trim, 1, 1),
    ("upper", Func::Upper, 1, 1),
];

impl Func {
    fn name(self) -> &'static str {
        FUNCS.iter().find(|f| f.1 == self).map_or("?", |f| f.0)
    }
}

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Number),
    Str(String),
    Ident(String),
    Dollar,
    Root,
    Dot,
    LBrack,
    RBrack,
    LParen,
    RParen,
    Comma,
    Star,
    Plus,
    Minus,
    Slash,
    Percent,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Not,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        let s = match self {
            Tok::Num(n) => return format!("`{n}`"),
            Tok::Str(s) => return format!("string {s:?}"),
            Tok::Ident(name) => return format!("`{name}`"),
            Tok::End => return "the end of the expression".into(),
            Tok::Dollar => "$",
            Tok::Root => "$$",
            Tok::Dot => ".",
            Tok::LBrack => "[",
            Tok::RBrack => "]",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Comma => ",",
            Tok::Star => "*",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::And => "&&",
            Tok::Or => "||",
            Tok::Not => "!",
        };
        format!("`{s}`")
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 1-based character column.
    column: usize,
}

fn lex(src: &str) -> Result<Vec<Token>, Error> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let next_is = |n: char| chars.get(i + 1) == Some(&n);
        let (tok, len) = match c {
            '$' if next_is('$') => (Tok::Root, 2),
            '$' => (Tok::Dollar, 1),
            '.' => (Tok::Dot, 1),
            '[' => (Tok::LBrack, 1),
            ']' => (Tok::RBrack, 1),
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            ',' => (Tok::Comma, 1),
            '*' => (Tok::Star, 1),
            '+' => (Tok::Plus, 1),
            '-' => (Tok::Minus, 1),
            '/' => (Tok::Slash, 1),
            '%' => (Tok::Percent, 1),
            '=' if next_is('=') => (Tok::Eq, 2),
            '=' => return err(column, "`=` is not an operator: compare with `==`"),
            '!' if next_is('=') => (Tok::Ne, 2),
            '!' => (Tok::Not, 1),
            '<' if next_is('=') => (Tok::Le, 2),
            '<' => (Tok::Lt, 1),
            '>' if next_is('=') => (Tok::Ge, 2),
            '>' => (Tok::Gt, 1),
            '&' if next_is('&') => (Tok::And, 2),
            '&' => return err(column, "`&` is not an operator: use `&&`"),
            '|' if next_is('|') => (Tok::Or, 2),
            '|' => return err(column, "`|` is not an operator: use `||`"),
            '"' | '\'' => {
                let (s, end) = lex_string(&chars, i)?;
                out.push(Token {
                    tok: Tok::Str(s),
                    column,
                });
                i = end;
                continue;
            }
            '0'..='9' => {
                let (n, end) = lex_number(&chars, i)?;
                out.push(Token {
                    tok: Tok::Num(n),
                    column,
                });
                i = end;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut end = i;
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_')
                {
                    end += 1;
                }
                out.push(Token {
                    tok: Tok::Ident(chars[i..end].iter().collect()),
                    column,
                });
                i = end;
                continue;
            }
            other => return err(column, format!("unexpected character `{other}`")),
        };
        out.push(Token { tok, column });
        i += len;
    }
    out.push(Token {
        tok: Tok::End,
        column: chars.len() + 1,
    });
    Ok(out)
}

/// A quoted string starting at `start`; returns it and the index after it.
fn lex_string(chars: &[char], start: usize) -> Result<(String, usize), Error> {
    let quote = chars[start];
    let unterminated = || err(start + 1, "unterminated string");
    let mut s = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = chars.get(i) else {
            return unterminated();
        };
        i += 1;
        if c == quote {
            return Ok((s, i));
        }
        if c != '\\' {
            s.push(c);
            continue;
        }
        let Some(&e) = chars.get(i) else {
            return unterminated();
        };
        i += 1;
        s.push(match e {
            '"' | '\'' | '\\' | '/' => e,
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'u' => {
                let hex: String = chars.iter().skip(i).take(4).collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32);
                let Some(c) = code else {
                    return err(i - 1, "`\\u` needs four hex digits of a character");
                };
                i += 4;
                c
            }
            other => return err(i - 1, format!("unknown escape `\\{other}`")),
        });
    }
}

/// A number starting at `start` (a digit); returns it and the index after.
fn lex_number(chars: &[char], start: usize) -> Result<(Number, usize), Error> {
    let digit_at = |i: usize| chars.get(i).is_some_and(char::is_ascii_digit);
    let mut i = start;
    while digit_at(i) {
        i += 1;
    }
    let mut integer = true;
    if chars.get(i) == Some(&'.') && digit_at(i + 1) {
        integer = false;
        i += 1;
        while digit_at(i) {
            i += 1;
        }
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        let sign = usize::from(matches!(chars.get(i + 1), Some('+' | '-')));
        if digit_at(i + 1 + sign) {
            integer = false;
            i += 1 + sign;
            while digit_at(i) {
                i += 1;
            }
        }
    }
    let text: String = chars[start..i].iter().collect();
    if integer && let Ok(n) = text.parse::<i64>() {
        return Ok((Number::from(n), i));
    }
    match text.parse::<f64>().ok().and_then(Number::from_f64) {
        Some(n) if n.as_f64().is_some_and(f64::is_finite) => Ok((n, i)),
        _ => err(start + 1, format!("number `{text}` is out of range")),
    }
}

// ---------------------------------------------------------------- parsing

/// Parses an expression.
pub fn parse(src: &str) -> Result<Expr, Error> {
    let mut parser = Parser {
        toks: lex(src)?,
        pos: 0,
        depth: 0,
    };
    if parser.peek() == &Tok::End {
        return err(1, "the expression is empty");
    }
    let expr = parser.expr()?;
    if parser.peek() != &Tok::End {
        return err(
            parser.column(),
            format!(
                "unexpected {} after a complete expression (missing operator?)",
                parser.peek().describe()
            ),
        );
    }
    Ok(expr)
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn column(&self) -> usize {
        self.toks[self.pos].column
    }

    fn next(&mut self) -> Token {
        let token = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        token
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), Error> {
        if self.eat(&tok) {
            Ok(())
        } else {
            err(
                self.column(),
                format!("expected {what}, found {}", self.peek().describe()),
            )
        }
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                self.column(),
                format!("the expression nests more than {MAX_DEPTH} levels deep"),
            );
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, Error> {
        self.enter()?;
        let expr = self.or();
        self.depth -= 1;
        expr
    }

    fn or(&mut self) -> Result<Expr, Error> {
        let mut left = self.and()?;
        while self.eat(&Tok::Or) {
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, Error> {
        let mut left = self.comparison()?;
        while self.eat(&Tok::And) {
            let right = self.comparison()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn comparison_op(&self) -> Option<BinOp> {
        Some(match self.peek() {
            Tok::Eq => BinOp::Eq,
            Tok::Ne => BinOp::Ne,
            Tok::Lt => BinOp::Lt,
            Tok::Le => BinOp::Le,
            Tok::Gt => BinOp::Gt,
            Tok::Ge => BinOp::Ge,
            _ => return None,
        })
    }

    fn comparison(&mut self) -> Result<Expr, Error> {
        let left = self.additive()?;
        let Some(op) = self.comparison_op() else {
            return Ok(left);
        };
        let column = self.next().column;
        let right = self.additive()?;
        if self.comparison_op().is_some() {
            return err(
                self.column(),
                "comparisons do not chain: write `a < b && b < c`",
            );
        }
        Ok(Expr::Binary {
            op,
            left: Box::new(left),
            right: Box::new(right),
            column,
        })
    }

    fn additive(&mut self) -> Result<Expr, Error> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(left),
            };
            let column = self.next().column;
            let right = self.multiplicative()?;
            left = Expr::Binary {
                op,
                left: Box::new(left),
                right: Box::new(right),
                column,
            };
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, Error> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                Tok::Percent => BinOp::Rem,
                _ => return Ok(left),
            };
            let column = self.next().column;
            let right = self.unary()?;
            left = Expr::Binary {
                op,
                left: Box::new(left),
                right: Box::new(right),
                column,
            };
        }
    }

    fn unary(&mut self) -> Result<Expr, Error> {
        let column = self.column();
        let negate = match self.peek() {
            Tok::Minus => true,
            Tok::Not => false,
            _ => return self.postfix(),
        };
        self.next();
        self.enter()?;
        let operand = self.unary();
        self.depth -= 1;
        let operand = Box::new(operand?);
        Ok(if negate {
            Expr::Neg(operand, column)
        } else {
            Expr::Not(operand)
        })
    }

    fn postfix(&mut self) -> Result<Expr, Error> {
        let base = match self.peek() {
            Tok::Dollar => {
                self.next();
                Base::Current
            }
            Tok::Root => {
                self.next();
                Base::Root
            }
            _ => Base::Value(Box::new(self.primary()?)),
        };
        let mut segs = Vec::new();
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.next();
                    let token = self.next();
                    segs.push(match token.tok {
                        Tok::Ident(name) => Seg::Key(name),
                        Tok::Star => Seg::Wild,
                        other => {
                            return err(
                                token.column,
                                format!(
                                    "expected a field name after `.`, found {} \
                                     (other keys are written $[\"key\"])",
                                    other.describe()
                                ),
                            );
                        }
                    });
                }
                Tok::LBrack => {
                    self.next();
                    let token = self.next();
                    let seg = match token.tok {
                        Tok::Star => Seg::Wild,
                        Tok::Str(key) => Seg::Key(key),
                        Tok::Num(n) => Seg::Index(index(&n, token.column, false)?),
                        Tok::Minus => match self.next() {
                            Token {
                                tok: Tok::Num(n),
                                column,
                            } => Seg::Index(index(&n, column, true)?),
                            other => {
                                return err(
                                    other.column,
                                    format!(
                                        "expected an index after `-`, found {}",
                                        other.tok.describe()
                                    ),
                                );
                            }
                        },
                        other => {
                            return err(
                                token.column,
                                format!(
                                    "expected an index, a \"key\" or `*` inside `[ ]`, found {}",
                                    other.describe()
                                ),
                            );
                        }
                    };
                    self.expect(Tok::RBrack, "`]`")?;
                    segs.push(seg);
                }
                _ => break,
            }
        }
        Ok(match base {
            Base::Value(expr) if segs.is_empty() => *expr,
            base => Expr::Path(base, segs),
        })
    }

    fn primary(&mut self) -> Result<Expr, Error> {
        let token = self.next();
        match token.tok {
            Tok::Num(n) => Ok(Expr::Lit(Value::Number(n))),
            Tok::Str(s) => Ok(Expr::Lit(Value::String(s))),
            Tok::Ident(name) => match name.as_str() {
                "true" => Ok(Expr::Lit(Value::Bool(true))),
                "false" => Ok(Expr::Lit(Value::Bool(false))),
                "null" => Ok(Expr::Lit(Value::Null)),
                _ if self.peek() == &Tok::LParen => self.call(&name, token.column),
                _ => err(
                    token.column,
                    format!(
                        "unknown name `{name}`: paths start with `$` (`$.{name}`), \
                         strings are quoted (`'{name}'`)"
                    ),
                ),
            },
            Tok::LParen => {
                let inner = self.expr()?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(inner)
            }
            other => err(
                token.column,
                format!("expected a value, found {}", other.describe()),
            ),
        }
    }

    fn call(&mut self, name: &str, column: usize) -> Result<Expr, Error> {
        let Some(&(_, func, fewest, most)) = FUNCS.iter().find(|f| f.0 == name) else {
            let known: Vec<&str> = FUNCS.iter().map(|f| f.0).collect();
            return err(
                column,
                format!("unknown function `{name}` (known: {})", known.join(", ")),
            );
        };
        self.expect(Tok::LParen, "`(`")?;
        let mut args = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                args.push(self.expr()?);
                if self.eat(&Tok::RParen) {
                    break;
                }
                self.expect(Tok::Comma, "`,` or `)`")?;
            }
        }
        if args.len() < fewest || args.len() > most {
            let wanted = match (fewest, most) {
                (a, b) if a == b => format!("{a}"),
                (a, MAX_ARGS) => format!("at least {a}"),
                (a, b) => format!("{a} or {b}"),
            };
            return err(
                column,
                format!("{name} takes {wanted} argument(s), not {}", args.len()),
            );
        }
        if func == Func::Exists && !matches!(args[0], Expr::Path(Base::Current | Base::Root, _)) {
            return err(column, "exists takes a path such as `$.a.b`");
        }
        Ok(Expr::Call { func, args, column })
    }
}

fn index(n: &Number, column: usize, negative: bool) -> Result<i64, Error> {
    match n.as_i64() {
        Some(i) => Ok(if negative { -i } else { i }),
        None => err(column, format!("array index `{n}` is not a whole number")),
    }
}

// ---------------------------------------------------------------- evaluation

/// What `$` and `$$` are while evaluating.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub current: &'a Value,
    pub root: &'a Value,
}

impl Expr {
    /// Evaluates the expression; a path that leads nowhere is `null`.
    pub fn eval(&self, scope: Scope<'_>) -> Result<Value, Error> {
        match self {
            Expr::Lit(v) => Ok(v.clone()),
            Expr::Path(..) => Ok(self.resolve(scope)?.unwrap_or(Value::Null)),
            Expr::Neg(operand, column) => negate(&operand.eval(scope)?).map_err(|message| Error {
                column: *column,
                message,
            }),
            Expr::Not(operand) => Ok(Value::Bool(!truthy(&operand.eval(scope)?))),
            Expr::And(left, right) => Ok(Value::Bool(
                truthy(&left.eval(scope)?) && truthy(&right.eval(scope)?),
            )),
            Expr::Or(left, right) => Ok(Value::Bool(
                truthy(&left.eval(scope)?) || truthy(&right.eval(scope)?),
            )),
            Expr::Binary {
                op,
                left,
                right,
                column,
            } => {
                let left = left.eval(scope)?;
                let right = right.eval(scope)?;
                binary(*op, &left, &right).map_err(|message| Error {
                    column: *column,
                    message,
                })
            }
            Expr::Call { func, args, column } => call(*func, args, scope, *column),
        }
    }

    /// Evaluates a path, telling a missing value (`None`) from `null`.
    fn resolve(&self, scope: Scope<'_>) -> Result<Option<Value>, Error> {
        match self {
            Expr::Path(Base::Current, segs) => Ok(walk(scope.current, segs)),
            Expr::Path(Base::Root, segs) => Ok(walk(scope.root, segs)),
            Expr::Path(Base::Value(base), segs) => Ok(walk(&base.eval(scope)?, segs)),
            other => other.eval(scope).map(Some),
        }
    }
}

/// Follows `segs` from `base`. After a wildcard the path is a projection:
/// later segments apply to each value, and those that lead nowhere drop
/// out; the result is an array.
fn walk(base: &Value, segs: &[Seg]) -> Option<Value> {
    let mut one = Some(base);
    let mut many: Option<Vec<&Value>> = None;
    for seg in segs {
        if let Some(list) = many.as_mut() {
            let mut next = Vec::with_capacity(list.len());
            for value in list.iter() {
                match seg {
                    Seg::Wild => children(value, &mut next),
                    _ => next.extend(step(value, seg)),
                }
            }
            *list = next;
        } else if *seg == Seg::Wild {
            let mut next = Vec::new();
            if let Some(value) = one {
                children(value, &mut next);
            }
            many = Some(next);
        } else {
            one = one.and_then(|value| step(value, seg));
        }
    }
    match many {
        Some(list) => Some(Value::Array(list.into_iter().cloned().collect())),
        None => one.cloned(),
    }
}

fn step<'v>(value: &'v Value, seg: &Seg) -> Option<&'v Value> {
    match seg {
        Seg::Key(key) => value.as_object()?.get(key),
        Seg::Index(i) => {
            let items = value.as_array()?;
            let at = if *i < 0 {
                i64::try_from(items.len()).ok()? + i
            } else {
                *i
            };
            items.get(usize::try_from(at).ok()?)
        }
        Seg::Wild => None,
    }
}

fn children<'v>(value: &'v Value, out: &mut Vec<&'v Value>) {
    match value {
        Value::Array(items) => out.extend(items),
        Value::Object(map) => out.extend(map.values()),
        _ => {}
    }
}

/// `null`, `false`, `0`, `""`, `[]` and `{}` are false; all else is true.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// The JSON type of a value, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expected(what: &str, found: &Value) -> String {
    format!("expected {what}, found {}", type_name(found))
}

/// A computed number: an integer when it is a whole number that an f64
/// holds exactly, an error when it is not finite.
fn float(f: f64) -> Result<Value, String> {
    if !f.is_finite() {
        return Err("the result is not a finite number".into());
    }
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        // Exact: a whole number below 2^53.
        #[allow(clippy::cast_possible_truncation)]
        return Ok(Value::from(f as i64));
    }
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| "the result is not a finite number".into())
}

fn as_f64(n: &Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

fn negate(value: &Value) -> Result<Value, String> {
    match value {
        Value::Number(n) => match n.as_i64().and_then(i64::checked_neg) {
            Some(i) => Ok(Value::from(i)),
            None => float(-as_f64(n)),
        },
        other => Err(format!("cannot apply `-` to {}", type_name(other))),
    }
}

fn binary(op: BinOp, left: &Value, right: &Value) -> Result<Value, String> {
    let cannot = || {
        Err(format!(
            "cannot apply `{}` to {} and {}",
            op.symbol(),
            type_name(left),
            type_name(right)
        ))
    };
    match op {
        BinOp::Eq => Ok(Value::Bool(equal(left, right))),
        BinOp::Ne => Ok(Value::Bool(!equal(left, right))),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let Some(ord) = compare(left, right) else {
                return cannot();
            };
            Ok(Value::Bool(match op {
                BinOp::Lt => ord == Ordering::Less,
                BinOp::Le => ord != Ordering::Greater,
                BinOp::Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }))
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => match (left, right) {
            (Value::Number(a), Value::Number(b)) => arithmetic(op, a, b),
            (Value::String(a), Value::String(b)) if op == BinOp::Add => {
                Ok(Value::String(format!("{a}{b}")))
            }
            _ => cannot(),
        },
    }
}

fn arithmetic(op: BinOp, a: &Number, b: &Number) -> Result<Value, String> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        if y == 0 && matches!(op, BinOp::Div | BinOp::Rem) {
            return Err("division by zero".into());
        }
        let exact = match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
            BinOp::Div if x.checked_rem(y) == Some(0) => x.checked_div(y),
            BinOp::Rem => x.checked_rem(y),
            _ => None,
        };
        if let Some(n) = exact {
            return Ok(Value::from(n));
        }
    }
    let (x, y) = (as_f64(a), as_f64(b));
    float(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div | BinOp::Rem if y == 0.0 => return Err("division by zero".into()),
        BinOp::Div => x / y,
        _ => x % y,
    })
}

fn compare_numbers(a: &Number, b: &Number) -> Ordering {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => as_f64(a).partial_cmp(&as_f64(b)).unwrap_or(Ordering::Equal),
    }
}

/// Orders two numbers or two strings; `None` for any other pair.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Some(compare_numbers(x, y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// JSON equality, numbers by value (`1 == 1.0`).
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

/// An array's items; `null` (a missing value) is an empty array.
fn items(value: Value) -> Result<Vec<Value>, String> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        other => Err(expected("an array", &other)),
    }
}

fn call(func: Func, args: &[Expr], scope: Scope<'_>, column: usize) -> Result<Value, Error> {
    let fail = |message: String| Error {
        column,
        message: format!("{}: {message}", func.name()),
    };
    // The functions that choose what to evaluate.
    match func {
        Func::If => {
            return if truthy(&args[0].eval(scope)?) {
                args[1].eval(scope)
            } else {
                args.get(2).map_or(Ok(Value::Null), |e| e.eval(scope))
            };
        }
        Func::Default => {
            let value = args[0].eval(scope)?;
            return if value.is_null() {
                args[1].eval(scope)
            } else {
                Ok(value)
            };
        }
        Func::Exists => {
            let projection = matches!(&args[0], Expr::Path(_, segs) if segs.contains(&Seg::Wild));
            return Ok(Value::Bool(match args[0].resolve(scope)? {
                None => false,
                Some(Value::Array(items)) if projection => !items.is_empty(),
                Some(_) => true,
            }));
        }
        Func::Map | Func::Filter => {
            let list = items(args[0].eval(scope)?).map_err(fail)?;
            let mut out = Vec::with_capacity(list.len());
            for item in list {
                let inner = Scope {
                    current: &item,
                    root: scope.root,
                };
                let value = args[1].eval(inner)?;
                if func == Func::Map {
                    out.push(value);
                } else if truthy(&value) {
                    out.push(item);
                }
            }
            return Ok(Value::Array(out));
        }
        _ => {}
    }
    let values = args
        .iter()
        .map(|a| a.eval(scope))
        .collect::<Result<Vec<_>, _>>()?;
    builtin(func, values).map_err(fail)
}

/// The functions that take their arguments' values.
fn builtin(func: Func, values: Vec<Value>) -> Result<Value, String> {
    let count = values.len();
    let mut args = values.into_iter();
    let a = args.next().unwrap_or(Value::Null);
    let b = args.next();
    match func {
        Func::Len => match a {
            Value::String(s) => Ok(Value::from(s.chars().count())),
            Value::Array(items) => Ok(Value::from(items.len())),
            Value::Object(map) => Ok(Value::from(map.len())),
            Value::Null => Ok(Value::from(0)),
            other => Err(expected("a string, array or object", &other)),
        },
        Func::Sum => {
            let mut total = Value::from(0);
            for item in numbers(items(a)?)? {
                total = binary(BinOp::Add, &total, &Value::Number(item))?;
            }
            Ok(total)
        }
        Func::Avg => {
            let list = numbers(items(a)?)?;
            if list.is_empty() {
                return Ok(Value::Null);
            }
            #[allow(clippy::cast_precision_loss)]
            let n = list.len() as f64;
            float(list.iter().map(as_f64).sum::<f64>() / n)
        }
        Func::Min | Func::Max => {
            let list = if count == 1 {
                items(a)?
            } else {
                std::iter::once(a).chain(b).chain(args).collect()
            };
            let want = if func == Func::Min {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            let mut best: Option<Value> = None;
            for item in list.into_iter().filter(|v| !v.is_null()) {
                best = Some(match best {
                    None if matches!(item, Value::Number(_) | Value::String(_)) => item,
                    None => return Err(expected("numbers or strings", &item)),
                    Some(current) => match compare(&item, &current) {
                        Some(ord) if ord == want => item,
                        Some(_) => current,
                        None => {
                            return Err(format!(
                                "cannot compare {} with {}",
                                type_name(&item),
                                type_name(&current)
                            ));
                        }
                    },
                });
            }
            Ok(best.unwrap_or(Value::Null))
        }
        Func::Upper | Func::Lower | Func::Trim => match a {
            Value::String(s) => Ok(Value::String(match func {
                Func::Upper => s.to_uppercase(),
                Func::Lower => s.to_lowercase(),
                _ => s.trim().to_string(),
            })),
            Value::Null => Ok(Value::Null),
            other => Err(expected("a string", &other)),
        },
        Func::Join => {
            let sep = match b {
                None => String::new(),
                Some(Value::String(s)) => s,
                Some(other) => {
                    return Err(format!("the separator: {}", expected("a string", &other)));
                }
            };
            let mut parts = Vec::new();
            for item in items(a)? {
                match item {
                    Value::String(s) => parts.push(s),
                    Value::Number(n) => parts.push(n.to_string()),
                    Value::Bool(b) => parts.push(b.to_string()),
                    Value::Null => {}
                    other => return Err(format!("cannot join an {}", type_name(&other))),
                }
            }
            Ok(Value::String(parts.join(&sep)))
        }
        Func::Split => {
            let s = match a {
                Value::String(s) => s,
                Value::Null => return Ok(Value::Null),
                other => return Err(expected("a string", &other)),
            };
            let sep = match b {
                Some(Value::String(sep)) => sep,
                other => {
                    return Err(format!(
                        "the separator: {}",
                        expected("a string", &other.unwrap_or(Value::Null))
                    ));
                }
            };
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect()
            };
            Ok(Value::Array(parts))
        }
        Func::Round => {
            let n = match a {
                Value::Number(n) => n,
                Value::Null => return Ok(Value::Null),
                other => return Err(expected("a number", &other)),
            };
            let digits = match b {
                None => 0,
                Some(Value::Number(d)) if d.as_i64().is_some_and(|d| (-15..=15).contains(&d)) => {
                    d.as_i64().unwrap_or(0)
                }
                Some(other) => {
                    return Err(format!(
                        "digits must be a whole number from -15 to 15, not {other}"
                    ));
                }
            };
            if n.as_i64().is_some() && digits >= 0 {
                return Ok(Value::Number(n));
            }
            float(round_decimal(as_f64(&n), digits))
        }
        Func::Abs => match a {
            Value::Number(n) => match n.as_i64().and_then(i64::checked_abs) {
                Some(i) => Ok(Value::from(i)),
                None => float(as_f64(&n).abs()),
            },
            Value::Null => Ok(Value::Null),
            other => Err(expected("a number", &other)),
        },
        Func::Number => match a {
            Value::Number(n) => Ok(Value::Number(n)),
            Value::Null => Ok(Value::Null),
            Value::Bool(b) => Ok(Value::from(i64::from(b))),
            Value::String(s) => {
                let t = s.trim();
                if let Ok(i) = t.parse::<i64>() {
                    return Ok(Value::from(i));
                }
                match t.parse::<f64>() {
                    Ok(f) if f.is_finite() => float(f),
                    _ => Err(format!("{s:?} is not a number")),
                }
            }
            other => Err(expected("a string or number", &other)),
        },
        Func::String => Ok(Value::String(match a {
            Value::String(s) => s,
            other => other.to_string(),
        })),
        Func::Keys => match a {
            Value::Object(map) => Ok(Value::Array(
                map.into_iter().map(|(k, _)| Value::String(k)).collect(),
            )),
            Value::Null => Ok(Value::Null),
            other => Err(expected("an object", &other)),
        },
        Func::Contains => {
            let needle = b.unwrap_or(Value::Null);
            match (a, &needle) {
                (Value::String(s), Value::String(n)) => Ok(Value::Bool(s.contains(n.as_str()))),
                (Value::String(_), other) => Err(format!(
                    "a string contains strings, not {}",
                    type_name(other)
                )),
                (Value::Array(items), n) => Ok(Value::Bool(items.iter().any(|v| equal(v, n)))),
                (Value::Object(map), Value::String(k)) => Ok(Value::Bool(map.contains_key(k))),
                (Value::Object(_), other) => Err(format!(
                    "an object contains string keys, not {}",
                    type_name(other)
                )),
                (Value::Null, _) => Ok(Value::Bool(false)),
                (other, _) => Err(expected("a string, array or object", &other)),
            }
        }
        Func::If | Func::Default | Func::Exists | Func::Map | Func::Filter => {
            unreachable!("evaluated lazily in call()")
        }
    }
}

/// Rounds half away from zero at `digits` decimals (negative: tens,
/// hundreds, ...), on the shortest decimal form of `x`: `round(1.005, 2)`
/// is 1.01, as written, though the nearest f64 to 1.005 is a hair below.
fn round_decimal(x: f64, digits: i64) -> f64 {
    let text = format!("{:e}", x.abs());
    let Some((mantissa, exponent)) = text.split_once('e') else {
        return x;
    };
    let Ok(exponent) = exponent.parse::<i64>() else {
        return x;
    };
    let all: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    // Digits before the decimal point, and how many digits to keep.
    let point = 1 + exponent;
    let keep = point + digits;
    let Ok(keep) = usize::try_from(keep) else {
        return 0.0;
    };
    if keep >= all.len() {
        return x;
    }
    let mut kept = all[..keep].to_vec();
    if all[keep] >= b'5' {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, b'1');
                break;
            }
            i -= 1;
            if kept[i] == b'9' {
                kept[i] = b'0';
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    if kept.is_empty() {
        return 0.0;
    }
    let scale = point - i64::try_from(keep).unwrap_or(0);
    let text = format!("{}e{scale}", String::from_utf8_lossy(&kept));
    text.parse::<f64>().map_or(x, |r| r.copysign(x))
}

/// The numbers in `list`, nulls skipped.
fn numbers(list: Vec<Value>) -> Result<Vec<Number>, String> {
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        match item {
            Value::Number(n) => out.push(n),
            Value::Null => {}
            other => return Err(format!("expected numbers, found {}", type_name(&other))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> Value {
        json!({
            "id": "A-17",
            "customer": {"name": "  Ada Lovelace ", "email": "ADA@EXAMPLE.COM", "vip": true},
            "items": [
                {"sku": "pen", "price": 1.5, "qty": 4},
                {"sku": "ink", "price": 12, "qty": 1, "tags": ["refill"]},
                {"sku": "pad", "price": 3.25, "qty": 2},
            ],
            "notes": null,
            "key with space": "yes",
            "counts": {"a": 1, "b": 2},
        })
    }

    fn eval_in(src: &str, input: &Value) -> Value {
        let expr = parse(src).unwrap_or_else(|e| panic!("parse {src:?}: {e:?}"));
        expr.eval(Scope {
            current: input,
            root: input,
        })
        .unwrap_or_else(|e| panic!("eval {src:?}: {e:?}"))
    }

    fn eval(src: &str) -> Value {
        eval_in(src, &order())
    }

    fn parse_error(src: &str) -> Error {
        match parse(src) {
            Err(e) => e,
            Ok(expr) => panic!("{src:?} parsed as {expr:?}"),
        }
    }

    fn eval_error(src: &str) -> Error {
        let input = order();
        match parse(src).unwrap().eval(Scope {
            current: &input,
            root: &input,
        }) {
            Err(e) => e,
            Ok(v) => panic!("{src:?} evaluated to {v}"),
        }
    }

    #[test]
    fn paths() {
        assert_eq!(eval("$.id"), json!("A-17"));
        assert_eq!(eval("$.customer.vip"), json!(true));
        assert_eq!(eval("$.items[0].sku"), json!("pen"));
        assert_eq!(eval("$.items[-1].sku"), json!("pad"));
        assert_eq!(eval("$.items[-3].sku"), json!("pen"));
        assert_eq!(eval("$[\"key with space\"]"), json!("yes"));
        assert_eq!(eval("$['key with space']"), json!("yes"));
        assert_eq!(eval("$.items[1]['tags'][0]"), json!("refill"));
        assert_eq!(eval("$$.id"), json!("A-17"));
        assert_eq!(eval("$").get("id"), Some(&json!("A-17")));
        // Missing is null, at any depth and on any type.
        for missing in [
            "$.nope",
            "$.nope.deeper",
            "$.items[3]",
            "$.items[-4]",
            "$.id.length",
            "$.items.sku",
            "$.customer[0]",
            "$.notes",
        ] {
            assert_eq!(eval(missing), Value::Null, "{missing}");
        }
        // Keywords are field names after a dot.
        assert_eq!(eval_in("$.null", &json!({"null": 1})), json!(1));
        // Paths on computed values.
        assert_eq!(eval("split($.id, '-')[1]"), json!("17"));
        assert_eq!(eval("keys($.counts)[-1]"), json!("b"));
        assert_eq!(eval("($.items)[0].qty"), json!(4));
    }

    #[test]
    fn wildcards_project() {
        assert_eq!(eval("$.items[*].sku"), json!(["pen", "ink", "pad"]));
        assert_eq!(eval("$.items.*.qty"), json!([4, 1, 2]));
        // Items without the key drop out of a projection.
        assert_eq!(eval("$.items[*].tags"), json!([["refill"]]));
        assert_eq!(eval("$.items[*].tags[*]"), json!(["refill"]));
        assert_eq!(eval("$.items[*].tags[0]"), json!(["refill"]));
        assert_eq!(eval("$.counts[*]"), json!([1, 2]));
        assert_eq!(eval("$.nope[*].x"), json!([]));
        assert_eq!(eval("$.id[*]"), json!([]));
        assert_eq!(
            eval_in("$[*][*]", &json!([[1, 2], [3], 4])),
            json!([1, 2, 3])
        );
        assert_eq!(eval("len($.items[*])"), json!(3));
        assert_eq!(eval("$.items[*].price[0]"), json!([]));
    }

    #[test]
    fn literals() {
        assert_eq!(eval("42"), json!(42));
        assert_eq!(eval("1.5"), json!(1.5));
        assert_eq!(eval("1e3"), json!(1000.0));
        assert_eq!(eval("2.5E-1"), json!(0.25));
        assert_eq!(eval("-7"), json!(-7));
        assert_eq!(eval(r#""a\"b\\c\n\u00e9""#), json!("a\"b\\c\né"));
        assert_eq!(eval(r#"'don\'t'"#), json!("don't"));
        assert_eq!(eval("true"), json!(true));
        assert_eq!(eval("false"), json!(false));
        assert_eq!(eval("null"), json!(null));
        assert_eq!(eval("99999999999999999999"), json!(1e20));
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(eval("1 + 2 * 3"), json!(7));
        assert_eq!(eval("(1 + 2) * 3"), json!(9));
        assert_eq!(eval("10 - 4 - 3"), json!(3));
        assert_eq!(eval("100 / 10 / 5"), json!(2));
        assert_eq!(eval("2 * 3 % 4"), json!(2));
        assert_eq!(eval("-2 * 3"), json!(-6));
        assert_eq!(eval("- -2"), json!(2));
        assert_eq!(eval("1 + 2 == 3"), json!(true));
        assert!(
            parse_error("1 < 2 == true")
                .message
                .contains("do not chain")
        );
        assert_eq!(eval("(1 < 2) == true"), json!(true));
        assert_eq!(eval("1 + 1 > 1 && 2 * 2 == 4"), json!(true));
    }

    #[test]
    fn logic_precedence() {
        assert_eq!(eval("true || false && false"), json!(true));
        assert_eq!(eval("(true || false) && false"), json!(false));
        assert_eq!(eval("!true || true"), json!(true));
        assert_eq!(eval("!(true || true)"), json!(false));
        assert_eq!(eval("1 < 2 && 2 < 3"), json!(true));
        assert_eq!(eval("!$.notes"), json!(true));
        assert_eq!(eval("$.customer.vip && len($.items) > 2"), json!(true));
        // Short-circuit: the right side is not evaluated.
        assert_eq!(eval("false && 'a' * 2"), json!(false));
        assert_eq!(eval("true || 'a' * 2"), json!(true));
        // Truthiness.
        for falsy in [
            "null",
            "false",
            "0",
            "0.0",
            "''",
            "$.nope[*]",
            "keys($.items[0].x)",
        ] {
            assert_eq!(eval(&format!("!{falsy}")), json!(true), "{falsy}");
        }
        for truthy in ["1", "-0.5", "' '", "$.items", "$.counts", "true"] {
            assert_eq!(eval(&format!("!!{truthy}")), json!(true), "{truthy}");
        }
    }

    #[test]
    fn arithmetic() {
        assert_eq!(eval("$.items[0].price * $.items[0].qty"), json!(6));
        assert_eq!(eval("7 / 2"), json!(3.5));
        assert_eq!(eval("6 / 3"), json!(2));
        assert_eq!(eval("7 % 3"), json!(1));
        assert_eq!(eval("-7 % 3"), json!(-1));
        assert_eq!(eval("5.5 % 2"), json!(1.5));
        assert_eq!(eval("0.1 + 0.2"), json!(0.30000000000000004));
        assert_eq!(eval("0.5 + 0.5"), json!(1));
        // Exact integers, falling back to floats on overflow.
        assert_eq!(eval("9007199254740993 + 1"), json!(9007199254740994_i64));
        assert_eq!(
            eval("9223372036854775807 + 1"),
            json!(9223372036854775808.0)
        );
        assert_eq!(eval("'ab' + 'cd'"), json!("abcd"));
        assert_eq!(eval("$.id + '/' + $.items[0].sku"), json!("A-17/pen"));
    }

    #[test]
    fn comparisons() {
        assert_eq!(eval("1 == 1.0"), json!(true));
        assert_eq!(eval("$.items[0] == $.items[0]"), json!(true));
        assert_eq!(eval("$.items[0] != $.items[1]"), json!(true));
        assert_eq!(eval("$.nope == null"), json!(true));
        assert_eq!(eval("$.notes == null"), json!(true));
        assert_eq!(eval("'1' == 1"), json!(false));
        assert_eq!(eval("'abc' < 'abd'"), json!(true));
        assert_eq!(eval("'B' < 'a'"), json!(true));
        assert_eq!(eval("2 >= 2.0"), json!(true));
        assert_eq!(eval("-1 < 0.5"), json!(true));
        assert_eq!(eval("3 > 2"), json!(true));
        assert_eq!(eval("3 <= 2"), json!(false));
        assert_eq!(eval("$.items[0].price <= 1.5"), json!(true));
        let nested = json!({"a": {"x": [1, 2.0]}, "b": {"x": [1.0, 2]}, "c": {"x": [1]}});
        assert_eq!(eval_in("$.a == $.b", &nested), json!(true));
        assert_eq!(eval_in("$.a == $.c", &nested), json!(false));
    }

    #[test]
    fn functions() {
        assert_eq!(eval("len($.items)"), json!(3));
        assert_eq!(eval("len($.id)"), json!(4));
        assert_eq!(eval("len('héllo')"), json!(5));
        assert_eq!(eval("len($.counts)"), json!(2));
        assert_eq!(eval("len($.nope)"), json!(0));
        assert_eq!(eval("sum($.items[*].qty)"), json!(7));
        assert_eq!(eval("sum($.items[*].price)"), json!(16.75));
        assert_eq!(eval("sum($.nope)"), json!(0));
        assert_eq!(eval("sum(map($.items, $.price * $.qty))"), json!(24.5));
        assert_eq!(eval("avg($.items[*].qty)"), json!(2.3333333333333335));
        assert_eq!(eval("avg($.nope[*])"), json!(null));
        assert_eq!(eval("min($.items[*].price)"), json!(1.5));
        assert_eq!(eval("max($.items[*].price)"), json!(12));
        assert_eq!(eval("max($.items[*].sku)"), json!("pen"));
        assert_eq!(eval("min(3, 1, null, 2)"), json!(1));
        assert_eq!(eval("max(2, $.nope)"), json!(2));
        assert_eq!(eval("min($.nope)"), json!(null));
        assert_eq!(eval("upper($.id)"), json!("A-17"));
        assert_eq!(eval("lower($.customer.email)"), json!("ada@example.com"));
        assert_eq!(eval("trim($.customer.name)"), json!("Ada Lovelace"));
        assert_eq!(eval("upper($.nope)"), json!(null));
        assert_eq!(eval("join($.items[*].sku, ', ')"), json!("pen, ink, pad"));
        assert_eq!(eval("join($.items[*].qty)"), json!("412"));
        assert_eq!(eval("split('a,b,,c', ',')"), json!(["a", "b", "", "c"]));
        assert_eq!(eval("split('abc', '')"), json!(["a", "b", "c"]));
        assert_eq!(eval("split($.nope, ',')"), json!(null));
        assert_eq!(eval("round(2.345, 2)"), json!(2.35));
        assert_eq!(eval("round(1.005, 2)"), json!(1.01));
        assert_eq!(eval("round(-1.005, 2)"), json!(-1.01));
        assert_eq!(eval("round(0.6)"), json!(1));
        assert_eq!(eval("round(0.4)"), json!(0));
        assert_eq!(eval("round(9.999, 2)"), json!(10));
        assert_eq!(eval("round(0.000123456, 5)"), json!(0.00012));
        assert_eq!(eval("round(60, -2)"), json!(100));
        assert_eq!(eval("round(6, -2)"), json!(0));
        assert_eq!(eval("round(0.1 + 0.2, 10)"), json!(0.3));
        assert_eq!(eval("round(2.5)"), json!(3));
        assert_eq!(eval("round(-2.5)"), json!(-3));
        assert_eq!(eval("round(1234.5, -2)"), json!(1200));
        assert_eq!(eval("round(17, 2)"), json!(17));
        assert_eq!(eval("round(1 / 3, 4)"), json!(0.3333));
        assert_eq!(eval("abs(-3)"), json!(3));
        assert_eq!(eval("abs(-2.5)"), json!(2.5));
        assert_eq!(eval("default($.notes, 'none')"), json!("none"));
        assert_eq!(eval("default($.nope.x, 0)"), json!(0));
        assert_eq!(eval("default($.id, 'none')"), json!("A-17"));
        assert_eq!(eval("default($.customer.vip, 'a' * 2)"), json!(true));
        assert_eq!(eval("if($.customer.vip, 'gold', 'std')"), json!("gold"));
        assert_eq!(eval("if(len($.items) > 5, 'big')"), json!(null));
        assert_eq!(eval("if(true, 1, 'a' * 2)"), json!(1));
        assert_eq!(eval("number('42')"), json!(42));
        assert_eq!(eval("number(' 2.50 ')"), json!(2.5));
        assert_eq!(eval("number('1e2')"), json!(100));
        assert_eq!(eval("number(true)"), json!(1));
        assert_eq!(eval("number($.nope)"), json!(null));
        assert_eq!(eval("string(12)"), json!("12"));
        assert_eq!(eval("string(1.5)"), json!("1.5"));
        assert_eq!(eval("string('x')"), json!("x"));
        assert_eq!(eval("string(null)"), json!("null"));
        assert_eq!(eval("string($.items[1].tags)"), json!("[\"refill\"]"));
        assert_eq!(eval("'#' + string($.items[0].qty)"), json!("#4"));
        assert_eq!(eval("keys($.counts)"), json!(["a", "b"]));
        assert_eq!(eval("keys($.nope)"), json!(null));
        assert_eq!(eval("exists($.notes)"), json!(true));
        assert_eq!(eval("exists($.nope)"), json!(false));
        assert_eq!(eval("exists($.items[5])"), json!(false));
        assert_eq!(eval("exists($.items[*].tags)"), json!(true));
        assert_eq!(eval("exists($.items[*].color)"), json!(false));
        assert_eq!(eval("exists($$.id)"), json!(true));
        assert_eq!(eval("contains($.id, '17')"), json!(true));
        assert_eq!(eval("contains($.items[*].sku, 'ink')"), json!(true));
        assert_eq!(eval("contains($.items[*].qty, 4.0)"), json!(true));
        assert_eq!(eval("contains($.counts, 'c')"), json!(false));
        assert_eq!(eval("contains($.nope, 'c')"), json!(false));
        assert_eq!(
            eval("map($.items, $.sku + ':' + string($.qty))"),
            json!(["pen:4", "ink:1", "pad:2"])
        );
        assert_eq!(eval("map($.items, $$.id)"), json!(["A-17", "A-17", "A-17"]));
        assert_eq!(
            eval("filter($.items, $.price > 2)[*].sku"),
            json!(["ink", "pad"])
        );
        assert_eq!(eval("len(filter($.items, exists($.tags)))"), json!(1));
        assert_eq!(eval("map($.nope, $.x)"), json!([]));
    }

    #[test]
    fn parse_errors_have_positions() {
        let cases: [(&str, usize, &str); 22] = [
            ("", 1, "empty"),
            ("$.", 3, "expected a field name after `.`"),
            ("$.a.", 5, "expected a field name"),
            ("$.a[", 5, "expected an index"),
            ("$.a[0", 6, "expected `]`"),
            ("$.a[1.5]", 5, "not a whole number"),
            ("$.a[-x]", 6, "expected an index after `-`"),
            ("sum($.a", 8, "expected `,` or `)`"),
            ("sum($.a,)", 9, "expected a value, found `)`"),
            ("1 +", 4, "expected a value, found the end"),
            ("(1 + 2", 7, "expected `)`"),
            ("1 2", 3, "unexpected `2` after a complete expression"),
            ("$.a = 1", 5, "`=` is not an operator"),
            ("a & b", 3, "use `&&`"),
            ("1 | 2", 3, "use `||`"),
            ("'abc", 1, "unterminated string"),
            ("'a\\qb'", 3, "unknown escape"),
            ("1 < 2 < 3", 7, "comparisons do not chain"),
            ("price * 2", 1, "unknown name `price`: paths start with `$`"),
            ("  summ($.a)", 3, "unknown function `summ`"),
            ("round()", 1, "round takes 1 or 2 argument(s), not 0"),
            ("exists(len($.a))", 1, "exists takes a path"),
        ];
        for (src, column, message) in cases {
            let e = parse_error(src);
            assert!(
                e.message.contains(message),
                "{src:?}: {:?} lacks {message:?}",
                e.message
            );
            assert_eq!(e.column, column, "{src:?}: {}", e.message);
        }
        assert!(
            parse_error("#")
                .message
                .contains("unexpected character `#`")
        );
        assert!(parse_error("'\\u12'").message.contains("four hex digits"));
        assert!(parse_error("if(1)").message.contains("2 or 3"));
        assert!(parse_error("min()").message.contains("at least 1"));
        assert!(
            parse_error("len(1, 2)")
                .message
                .contains("takes 1 argument(s), not 2")
        );
        // Columns count characters, not bytes.
        assert_eq!(parse_error("'é' +").column, 6);
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        assert!(parse_error(&deep).message.contains("nests more than 64"));
        let deep = format!("{}1", "-".repeat(200));
        assert!(parse_error(&deep).message.contains("nests more than 64"));
        let ok = format!("{}1{}", "(".repeat(40), ")".repeat(40));
        assert_eq!(eval(&ok), json!(1));
    }

    #[test]
    fn type_errors_name_the_operation() {
        let cases: [(&str, usize, &str); 16] = [
            ("'a' * 2", 5, "cannot apply `*` to string and number"),
            ("$.id + 1", 6, "cannot apply `+` to string and number"),
            ("$.nope + 1", 8, "cannot apply `+` to null and number"),
            ("$.items < 2", 9, "cannot apply `<` to array and number"),
            ("1 / 0", 3, "division by zero"),
            ("1.5 % 0", 5, "division by zero"),
            ("-'a'", 1, "cannot apply `-` to string"),
            (
                "sum($.items[*].sku)",
                1,
                "sum: expected numbers, found string",
            ),
            ("sum($.id)", 1, "sum: expected an array, found string"),
            ("  upper(1)", 3, "upper: expected a string, found number"),
            ("len(true)", 1, "len: expected a string, array or object"),
            ("max(1, 'a')", 1, "max: cannot compare string with number"),
            ("number('abc')", 1, "number: \"abc\" is not a number"),
            ("round(1.5, 1.5)", 1, "round: digits must be a whole number"),
            ("join($.items)", 1, "join: cannot join an object"),
            ("1e308 * 10", 7, "not a finite number"),
        ];
        for (src, column, message) in cases {
            let e = eval_error(src);
            assert!(
                e.message.contains(message),
                "{src:?}: {:?} lacks {message:?}",
                e.message
            );
            assert_eq!(e.column, column, "{src:?}: {}", e.message);
        }
        // Inside map, the error is the inner one.
        let e = eval_error("map($.items, $.sku * 2)");
        assert_eq!(e.column, 20);
        assert!(e.message.contains("cannot apply `*` to string and number"));
    }
}
