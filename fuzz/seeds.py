#!/usr/bin/env python3
"""Writes the committed seed corpus: a handful of valid (and a few nearly valid) inputs per
fuzz target, as fuzz/corpus/TARGET/seed-NN. Run from anywhere; it replaces only seed-*
files. The keys named here are the fixed test keys of fuzz/src/lib.rs."""

import base64
import json
import os
import random
import shutil
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
NOW = 1_700_000_000
HOLDER_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "EnS8lwQt9Wn2_S4cCVgnip0U7JumioKHvK5hhf4IMHs",
    "y": "0fmeJBNKOxPCjqHlpNjuRmxO3Ea_q593kelQszrQHAw",
}
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def citizen_id(first17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(w * int(d) for w, d in zip(weights, first17))
    return first17 + "10X98765432"[total % 11]


ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def network_number(payload: str) -> str:
    partial = sum((i + 1) * ALPHABET.index(c) for i, c in enumerate(payload)) % 31
    check = ((31 - partial) % 31 * 13) % 31
    return payload + ALPHABET[check]


def form(pairs) -> str:
    from urllib.parse import urlencode

    return urlencode(pairs)


def authorization(extra=()):
    return [
        ("response_type", "code"),
        ("client_id", "shop"),
        ("redirect_uri", "https://shop.example/cb"),
        ("scope", "openid region age_over_18"),
        ("state", "af0ifjsldkj"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        *extra,
    ]


def seeds():
    ids = [citizen_id("11010519491231002"), citizen_id("44010619900307001"),
           citizen_id("31010120000229123")]
    yield "citizen_id", [
        *ids,
        "  11010519491231002x\n",
        "110105194912310021",  # wrong check character
        "1101051949023000" + "12",  # impossible date
    ]

    numbers = [network_number("ABCDEFGHJKM"), network_number("23456789XYZ")]
    yield "network_number", [
        *numbers,
        f"{numbers[0][:4]}-{numbers[0][4:8]}-{numbers[0][8:]}",
        numbers[1].lower(),
        "ABCD-EFGH-JKL0",
        bytes(range(16)) + b"XXXX",
    ]

    yield "jws", [
        '{"alg":"ES256","typ":"JWT"}\n{"sub":"x","n":1}',
        '{"alg":"ES256","typ":"JWT","kid":"issuer-1"}\n{"iss":"https://id.example","exp":1700000100}',
        '{"alg":"none"}\n{}',
        '{"alg":"ES256","typ":"kb+jwt"}\n[1,2,3]',
        "eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
        compact(HOLDER_JWK),
        compact({**HOLDER_JWK, "kid": "k", "alg": "ES256", "use": "sig"}),
        compact({**HOLDER_JWK, "d": "AAAA"}),
    ]

    credential = {
        "iss": "https://id.example",
        "vct": "urn:cyberid:credential",
        "iat": NOW - 10,
        "exp": NOW + 3600,
        "cnf": {"jwk": HOLDER_JWK},
        "status": {"status_list": {"idx": 3, "uri": "https://id.example/status/1"}},
    }
    disclosures = [
        compact(["c2FsdDE", "region", "CN-BJ"]),
        compact(["c2FsdDI", "age_over_18", True]),
        compact(["c2FsdDM", "name", "王芳"]),
    ]
    key_binding = "#kb " + compact(
        {"iat": NOW, "aud": "https://rp.example", "nonce": "nonce-1", "sd_hash": "@sd_hash@"}
    )
    yield "sd_jwt", [
        "\n".join([compact(credential), *disclosures]),
        "\n".join([compact(credential), *disclosures, key_binding]),
        "\n".join([compact({**credential, "exp": NOW - 1}), disclosures[0]]),
        "\n".join([compact(credential), disclosures[0], disclosures[0]]),
        compact(credential),
        "eyJhbGciOiJFUzI1NiJ9.e30.AAAA~WyJzIiwibiIsMV0~",
    ]

    statuses = bytes([0b0001_0000, 0, 0xFF, 0b1000_0001])
    lst = b64url(zlib.compress(statuses, 9))
    ops = (40).to_bytes(2, "little") + bytes([3, 0, 1, 5, 0, 2, 39, 0, 1, 41, 0, 1])
    yield "status_list", [
        bytes([0]) + lst.encode(),  # 1 bit
        bytes([1]) + lst.encode(),  # 2 bits
        bytes([3]) + b64url(zlib.compress(bytes(64))).encode(),  # 8 bits
        bytes([0]) + ops,
        bytes([2]) + ops,
        bytes([0]) + compact({"sub": "https://id.example/status/1", "iat": NOW,
                              "exp": NOW + 86400, "ttl": 3600,
                              "status_list": {"bits": 1, "lst": lst}}).encode(),
    ]

    claims = compact({"userinfo": {"region": None},
                      "id_token": {"age_over_18": {"essential": True},
                                   "acr": {"values": ["urn:cyberid:acr:l2"]}}})
    yield "authorization_request", [
        form(authorization()),
        form(authorization([("acr_values", "urn:cyberid:acr:l3 urn:cyberid:acr:l2"),
                            ("prompt", "consent")])),
        form(authorization([("claims", claims)])),
        form(authorization([("request_uri", "urn:ietf:params:oauth:request_uri:abc")])),
        form([(k, v) for k, v in authorization() if k != "code_challenge_method"]),
        "response_type=code&response_type=token",
    ]

    yield "claims_parameter", [
        claims,
        compact({"id_token": {"acr": {"essential": True, "value": "urn:cyberid:acr:l3"}}}),
        compact({"userinfo": {"name": None, "network_number": {"essential": False}},
                 "id_token": {"region": {"values": ["CN-BJ"]}}}),
        compact({"id_token": {"acr": {"values": ["urn:cyberid:acr:l1", "urn:other"]}},
                 "other": 1}),
        compact({"id_token": {"acr": {"values": "urn:cyberid:acr:l2"}}}),
    ]

    basic = "Basic " + base64.b64encode(b"shop:s3cret%2Bx").decode()
    token = [("grant_type", "authorization_code"), ("code", "Zm9vLmJhcg"),
             ("redirect_uri", "https://shop.example/cb"), ("code_verifier", VERIFIER)]
    yield "token_form", [
        basic + "\n" + form(token),
        "basic " + base64.b64encode(b"a%3Ab:c+d").decode() + "\n" + form(token),
        "\n" + form([*token, ("client_assertion_type", JWT_BEARER),
                     ("client_assertion", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA")]),
        basic + "\n" + form([*token, ("client_secret", "s3cret")]),
        "\n" + form([("grant_type", "refresh_token"), ("client_id", "shop")]),
    ]

    assertion_claims = {"iss": "shop", "sub": "shop", "aud": "https://id.example/token",
                        "exp": NOW + 120, "iat": NOW, "jti": "j-1"}
    yield "client_assertion", [
        '{"alg":"ES256","kid":"client-1"}\n' + compact(assertion_claims),
        '{"alg":"ES256","typ":"JWT"}\n'
        + compact({**assertion_claims, "aud": ["https://id.example", "x"], "nbf": NOW}),
        '{"alg":"ES256"}\n' + compact({**assertion_claims, "exp": NOW + 3600}),
        '{"alg":"ES256"}\n' + compact({**assertion_claims, "nbf": NOW + 3600}),
        "eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
    ]

    rng = random.Random(12)

    def face() -> str:
        return b64url(bytes(rng.randrange(256) for _ in range(128)))

    records = [
        "\t".join([ids[0], "王芳", "1949-12-31", "female", face()]),
        "\t".join([ids[1], "Li  Wei", "1990-03-07", "male", face()]),
        "\t".join([ids[2], "阿依古丽·买买提", "2000-02-29", "male", face()]),
    ]
    header = "#cyberid-registry/1\tid_number\tname\tbirth_date\tsex\tface\n"
    yield "registry_file", [
        "\n".join(records) + "\n",
        records[0] + "\r\n" + records[0].lower() + "\n",
        header + records[1] + "\nnot a record\n" + records[2],
        "#cyberid-registry/2\tid_number\n",
        "\t".join([ids[0], "王芳", "1949-12-30", "female", face()]) + "\n",
    ]

    template = bytes(rng.randrange(256) for _ in range(128))
    yield "face_sample", [
        b64url(template),
        "  " + b64url(template) + "\n",
        compact({"format": "cyberid-face-sample/1", "embedding": b64url(template)}),
        compact({"format": "cyberid-face-sample/1", "embedding": b64url(bytes(128))}),
        compact({"format": "cyberid-face-sample/2", "embedding": ""}),
        template,
    ]

    yield "wallet_link", [
        "cyberid-wallet:?login=https://id.example/login/--0k3Zx1abc_DEF-ghi",
        "cyberid-wallet:?login=https%3A%2F%2Fid.example%2Flogin%2Fab",
        "https://id.example/login/xyz?x=1",
        "  http://127.0.0.1:8080/login/ab#c \n",
        "cyberid-wallet:?login=a+b%FF",
    ]


def main():
    for target, inputs in seeds():
        directory = os.path.join(HERE, "corpus", target)
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.startswith("seed-"):
                os.remove(os.path.join(directory, name))
        for number, value in enumerate(inputs):
            data = value if isinstance(value, bytes) else value.encode()
            with open(os.path.join(directory, f"seed-{number:02}"), "wb") as out:
                out.write(data)


if __name__ == "__main__":
    main()
