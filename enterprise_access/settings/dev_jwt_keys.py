"""
DEV-ONLY JWT signing keys for the ``local`` and ``test`` settings. NEVER used by ``production``.

The private key is committed on purpose so that ``manage.py mint_jwt`` and the test suite can sign tokens
the local service accepts. Anyone can read it, so a token signed with it proves nothing outside a developer's
machine: production reads its public key set from ``JWT_PUBLIC_SIGNING_JWK_SET`` and has no private key.
"""
import json
import secrets

DEV_JWT_ISSUER = "http://localhost:18000/oauth2"
DEV_JWT_AUDIENCE = "enterprise-access-dev"
DEV_JWT_KEY_ID = "enterprise-access-dev-1"

DEV_JWT_PRIVATE_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDFQoKfRDHbloXY
/bQp6JV1Tas4YbDRTCxBExWGbTHqTIdvCzWXqfBnXrkvOP+ak3Zuhvx4XJd4GgB3
lWAgx/FSYFSRoiJzxhK1GbFpcO7nmkLJRQdsO2aZKxpMmQGzfSVFMCcKDGuWj7OU
I3u9U0HC9KvcjzpIg8KC6ORgylahUZf6sQUhcIaBrw7ynqYIt9QPSyrC61ZhI2oC
hjetM1slXQPg7xSuuFQsa/Hg2KGp+SkbmpX1t3S5WYqvJhLMV3NJWOdxvzYXc1QP
dEdhHyA5naw1Gtj9GLTeHB8sSpyV5bkHsaaLB8JoNi8sFC1F4HN3HQPfHqLPwChR
t3hfGSatAgMBAAECggEAAV7fEty42y9R+ZhcID75fcOGFZ5JtHojtczRuqm+ZrzU
xxJ98yQvHFoXqlxcG9omR+2ZAzT4YTvj5+KU5ouhjEKQCE8f5OE0o1kbKLdPv2tF
nLDlrY5eNuERX5K1Xa20ySv6LJM6PV4ZhROfCh6yHM4/yx3xws+Aqzw+MG4Wl2T0
LVWxjUBslZ4Z0Z08W0UtoSG1/qT1KXLSIAlBukMK+OAXf9/ROw4N7GG3a7CgWFJ6
raxGZpYSJkXXVsk9Z//QZpBYTgsAKCl0lylwaT+ayyWAeZAwSx+HIkXNwqYh/t3L
bLJFqQVm8/2VycIQz37t5NUrRQ2q+MMUZmSctJ2QMQKBgQD+ef0tfgCY5MOsxs05
ROwTOZWj5h9VoPJyrAWKBHVhOyU77BJ0WAgeTCmgbfNekls+6hrOq41l+GekbyRf
pswZ0LHyZG+FQ8YPpO9oP+SmAn84SCM7spIGJ/uadkDL+nCAmkguW6Lz1geJDt5P
FTgQRlXG7h23N94pUsMhrPDgUQKBgQDGcNSzXG1hkpomwTSPChzb4UbkOIH3DxBd
UMJ+bLN5sAbA3r4dg3zcOhGMxAcVTXenfPffyrQRZxPhXl4SdbRaHiRSVFW3M1+i
/FQbebvB/Nwbx/1FIgYbx4MOGYc2KUt8ZSZORxB+JPCCuMUMLVZSnWLoTOD8d5sh
ogOqWZ4FnQKBgBSaV88pFm9KhjUk21S5qctcrCra5MqP/1EdcE1eUwqOOVOCp3PX
9MBPNkeQ31VW0CBl38m/xfDtjaaYgP9lh7zHUsDnNMg7VnvJxMBR+/cc2KP74y5g
JMZu0kYNMO3S1uzykMmADc9kErQcCg+pDiLzLtquSKWe1lPOKZI+aDohAoGBALzo
qsP4yDQr8M3V/afyE5kKs4cNeEPutkBvYkgiSRUeCr/PDCNiihnIue5MqwWPksoC
QKJuAM/UVeuk/18JaGCl8yPhHxxhLrklBxiE4cYBZrSXxTbr9e66Frv0d3CLDU5l
qHq6UiwUFFYNeaBnBJdvNro4fbI6VpdE+cJQwAtNAoGBALwvr1FBcyGqB4jdwBvQ
9KZdtTZntJfKdNFObKhTvBhRB5ZOHGGAfSFFNiw5yUCIMZjvSD3RXjTMa/+aoB3E
VaFnKhcAwU7CLf8kT69FuCJbCyqc5jyxtQ8n1slQSsMThtrFKGgK7HZJ+4iG2Y8T
GfvBqcoYS967RUEa6tcjzSIx
-----END PRIVATE KEY-----
"""

DEV_JWT_PUBLIC_JWK_SET = json.dumps({"keys": [{"kty": "RSA", "key_ops": ["verify"], "n": "xUKCn0Qx25aF2P20KeiVdU2rOGGw0UwsQRMVhm0x6kyHbws1l6nwZ165Lzj_mpN2bob8eFyXeBoAd5VgIMfxUmBUkaIic8YStRmxaXDu55pCyUUHbDtmmSsaTJkBs30lRTAnCgxrlo-zlCN7vVNBwvSr3I86SIPCgujkYMpWoVGX-rEFIXCGga8O8p6mCLfUD0sqwutWYSNqAoY3rTNbJV0D4O8UrrhULGvx4NihqfkpG5qV9bd0uVmKryYSzFdzSVjncb82F3NUD3RHYR8gOZ2sNRrY_Ri03hwfLEqcleW5B7GmiwfCaDYvLBQtReBzdx0D3x6iz8AoUbd4XxkmrQ", "e": "AQAB", "kid": "enterprise-access-dev-1", "use": "sig", "alg": "RS256"}]})  # noqa: E501


def dev_jwt_auth(jwt_auth: dict) -> dict:
    """
    ``JWT_AUTH`` for the local and test settings: tokens verified against the dev key pair only.

    The issuer's symmetric SECRET_KEY is a random per-process value and symmetric decoding is off anyway, so no
    HS256 token signed with a guessable secret can be accepted.
    """
    return {
        **jwt_auth,
        "JWT_ISSUERS": [
            {"ISSUER": DEV_JWT_ISSUER, "AUDIENCE": DEV_JWT_AUDIENCE, "SECRET_KEY": secrets.token_urlsafe(48)},
        ],
        "JWT_PUBLIC_SIGNING_JWK_SET": DEV_JWT_PUBLIC_JWK_SET,
    }
