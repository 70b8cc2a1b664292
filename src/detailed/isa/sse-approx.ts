/**
 * rcpps/rcpss/rsqrtps/rsqrtss: the hardware's approximations, bit for bit.
 *
 * The SDM only bounds their error (1.5 * 2^-12); the exact results are model-specific. On the
 * CPU the oracle runs on (Intel, Sapphire Rapids class) the result depends only on the top 11
 * (rcp) or 10 (rsqrt, plus the exponent's parity) fraction bits of the input and has a 12-bit
 * fraction, so the approximations are two measured tables of 2048 12-bit fractions, captured
 * under KVM (inputs 1.f for rcp, 1.f and 2 * 1.f for rsqrt) and scaled by the exponent here.
 * Other CPU models (older Intel, AMD) compute different approximations: there these differ.
 *
 * Special cases (SDM): ±0 and denormals (always read as 0) give ±inf; rcp(±inf) = ±0; tiny rcp
 * results flush to ±0; rsqrt of a negative number is the QNaN indefinite, rsqrt(+inf) = +0;
 * NaNs are returned quieted. MXCSR is neither read nor written.
 */
import { Mnemonic } from 'iced-x86';
import type { DecodeInfo } from '../decodeInfo.js';
import { define, type Exec } from './registry.js';
import { loadSrc, rejectMmx, SU32, xmmReg } from './sse-common.js';

/** 4096 packed 12-bit fractions: rcp[0..2047], then rsqrt[2048..4095] (parity << 10 | fraction bits 22..13). */
const PACKED =
  '/q//9i//7q/+5i/+3q/91i/9zq/8xi/8v7/7tz/7r7/6pz/6n7/5lz/5kM/4iE/4gM/3eE/3cd/2aV/2Yd/1WW/1Uu/0Sm/0' +
  'Qv/zO3/zM//yLI/yJA/yHJ/xFR/xDa/wBi/w/r7v9z7v787u6E7u4N7t2V7t0u7sym7sw/7ru47rtA7rrZ7qpS7qnq7plz7p' +
  'j87oiE7ogd7nem7ncv7ma37mZA7mXZ7lVS7lTr7kR07kQM7jOV7jMu7iK37iIw7iHJ7hFS7hDr7gB07gAN7f+W3f8v3e643e' +
  '5B3e3a3d1j3dz83cyF3cwe3bun3btA3brZ3api3an73ZmF3Zke3Yin3YhA3YfZ3Xdj3Xb83WaF3WYu3VW43VVB3VTq3UR03U' +
  'QN3TOW3TM/3SLJ3SJi3SH83RGF3REu3QC43QBB3Q/rzP90zP8ezO6nzO5AzO3azN1zzN0NzMynzMwwzMvazLtjzLsNzKqmzK' +
  'owzKnZzJljzJkNzIimzIgwzIfazHdzzHcNzGanzGZAzGXazFV0zFUezESnzERBzEPrzDOFzDMuzCK4zCJSzCH8zBGWzBEwzB' +
  'DJzABjzAANy/+nu/9Bu/7ru+6Fu+4vu93Ju91ju90Nu8ymu8wwu8vau7t0u7seu6q4u6pju6oNu5mnu5lBu5jru4iFu4gvu3' +
  'fJu3dju3cNu2anu2ZBu2X8u1WWu1Uwu1Tau0R0u0QfuzPJuzNjuzMNuyKnuyJSuyH8uxGWuxEwuxDruwCFuwAvuv/Kqv90qv' +
  '8equ65qu5jqu4Nqt2oqt1Sqtz8qsynqsxBqsvsqruWqrsxqrrrqqqFqqowqqnaqpmFqpkvqojaqoh0qogvqnfJqnd0qnceqm' +
  'bJqmZjqmYeqlW5qlVjqlUOqkS4qkRjqkQOqjO4qjNjqjMOqiK4qiJTqiINqhG4qhFTqhEOqgC4qgBjqgAOqf+4mf9jmf8Ome' +
  '65me5jme4emd3Jmd1kmd0fmczJmcx0mcwvmbvKmbt1mbsvmaramaqFmaowmanbmZmGmZkxmZjsmYiWmYhBmYf8mXenmXdSmX' +
  'cNmWa4mWZjmWYemVW5mVVkmVUfmUTKmUR1mUQgmUPbmTOWmTNBmTL8mSKnmSJSmSINmRG4mRFjmREfmQDKmQB1mQAgmQ/biP' +
  '+WiP9BiP78iO6oiO5TiO4OiN25iN10iN0viMzbiMyGiMwxiMv8iLuniLtTiLsOiKrJiKp0iKogiKnbiJmWiJlBiJj9iIioiI' +
  'hjiIgfiHfKiHeFiHcxiHbsiGaniGZTiGYOiFXJiFV1iFUgiFTsiESXiERSiEQOiDO5iDN1iDMgiDLriCKXiCJSiCIOiBG5iB' +
  'F1iBEgiBDsiACXiABTiAAOh//Kd/91d/8xd/7sd+6od+5Td+4fd93ad92Gd91Bd9z9d8y5d8xkd8wgd8vrd7uXd7tTd7sOd6' +
  'rKd6qFd6oxd6n9d5m4d5lkd5kgd5jrd4iXd4hTd4ged3fKd3eGd3dCd3b9d2a5d2Z1d2Ywd2Xsd1Wod1Vkd1Ufd0Tbd0SXd0' +
  'RTd0QedzPKdzOGdzNCdzMOdyK5dyJ1dyIxdyH9dxG5dxF1dxEgdxDsdwCodwBkdwAgdw/sZv+oZv9TZv8fZu7bZu6XZu5TZu' +
  '4fZt3bZt2XZt1TZt0fZszbZsyWZsxCZswOZrvKZruGZrtCZrsOZqrKZqqGZqpCZqoOZpnKZpmGZplCZpkOZojKZoiGZohCZo' +
  'gOZnfKZneXZndTZncfZmbbZmaXZmZTZmYfZlXbZlWXZlVTZlUfZkTcZkSoZkRkZkQgZkPsZjOoZjNkZjMgZjL9ZiK5ZiJ1Zi' +
  'IxZiH9ZhG5ZhGGZhFCZhEOZgDKZgCGZgBTZgAfZf/bVf+XVf9UVf8gVf7sVe6oVe5lVe4xVe39Vd25Vd12Vd1CVd0OVczKVc' +
  'yXVcxTVcwfVbvsVbuoVbtkVbshVbr9Vaq5Vap2VapCVaoOVZnLVZmXVZlTVZkgVZjsVYioVYh1VYgxVYf+VXfKVXeGVXdTVX' +
  'cfVWbcVWaoVWZkVWYxVWX9VVXKVVWGVVVDVVUfVUTcVUSoVURkVUQxVUP9VTPKVTOGVTNTVTMfVSLsVSKoVSJ1VSIxVSIOVR' +
  'HKVRGXVRFTVREgVRDtVQC5VQB2VQBCVQAPVP/bRP+oRP9kRP8xRP7+RO7KRO6HRO5TRO4gRO3tRN25RN12RN1CRN0fRMzcRM' +
  'yoRMx1RMwxRMwORLvLRLuXRLtkRLshRLr9RKrKRKqHRKpTRKogRKntRJm5RJmGRJlDRJkfRIjsRIipRIh2RIhCRIgfRHfcRH' +
  'eoRHd1RHdCRHcPRGbbRGaoRGZlRGYyRGYORFXbRFWoRFVlRFUxRFUORETbRESYRERlREQxREQORDPbRDOYRDNlRDMxRDMORC' +
  'LbRCKYRCJlRCIxRCIORBHbRBGoRBFlRBEyRBEPRADbRACoRAB1RABCRAAPQ//cM/+pM/92M/9CM/8fM+7sM+65M+6GM+5DM+' +
  '4QM+3tM926M92HM91UM90gM9z9M8zKM8yXM8xkM8wxM8wOM7vbM7uoM7t1M7tCM7sPM6rcM6qpM6p2M6pDM6oQM6ntM5m6M5' +
  'mHM5lUM5khM5j+M4jLM4iYM4hlM4gyM4gPM3fsM3e5M3eGM3dTM3cgM3b9M2bKM2aXM2ZkM2YxM2YPM1XcM1WpM1V2M1VDM1' +
  'UQM1TtM0TKM0SXM0RkM0QxM0QPMzPcMzOpMzN2MzNDMzMgMzL9MyLKMyKXMyJlMyIyMyIPMxHcMxG5MxGGMxFTMxEhMxD+Mw' +
  'DLMwCoMwB1MwBCMwAQMw/tIv+6Iv+XIv9kIv8yIv8PIu7cIu65Iu6GIu5UIu4hIu3+It3bIt2pIt12It1DIt0gItz9IszLIs' +
  'yYIsx1IsxCIswQIsvtIrvKIruXIrtlIrsyIrsfIqrtIqq6IqqHIqpkIqoyIqoPIpnsIpm6IpmHIplUIpkxIpkPIojcIoi5Io' +
  'iHIohUIogxIogPInfcIne5IneHIndUIncxIncPImbcIma5ImaHImZUImYxImYPIlXcIlW6IlWHIlVkIlUyIlUPIkTsIkS6Ik' +
  'SHIkRlIkQyIkQfIjPtIjO6IjOYIjNlIjNCIjMQIjL9IiLLIiKYIiJ1IiJDIiIgIiH+IhHbIhGpIhF2IhFUIhEhIhEOIgDcIg' +
  'C5IgCHIgBkIgAyIgAPIf/tEf+6Ef+YEf9lEf9DEf8QEf7+Ee7LEe6pEe52Ee5UEe4hEe4PEd3cEd26Ed2HEd1lEd0yEd0QEd' +
  'ztEczLEcyYEcx2EcxTEcwhEcwOEbvcEbu5EbuHEbtlEbsyEbsQEbrtEarLEaqoEap2EapTEaohEaoPEZncEZm6EZmXEZllEZ' +
  'lDEZkQEZj+EYjLEYipEYiGEYhUEYgyEYgPEXftEXfLEXeYEXd2EXdTEXchEXcPEWbcEWa6EWaYEWZlEWZDEWYgEWX+EVXcEV' +
  'W5EVWHEVVlEVUyEVUQEVT+EUTLEUSpEUSHEURUEUQyEUQQEUPtETPLETOpETOGETNUETMyETMfESLtESLLESKpESJ2ESJUES' +
  'IyESIPERHtERHLERGoERF2ERFUEREyEREPEQDtEQDLEQCpEQB2EQBUEQAyEQAQEQ/tAP/LAP+pAP+GAP9UAP8yAP8QAP7+AO' +
  '7LAO6pAO6HAO5lAO4yAO4QAO3+AN3cAN25AN2HAN1lAN1DAN0hAN0OAMzcAMy6AMyYAMx2AMxDAMwhAMwPALvtALvLALuoAL' +
  't2ALtUALsyALsQALr+AKrLAKqpAKqHAKplAKpDAKohAKn+AJncAJm6AJmYAJl2AJlUAJkxAJkPAIjtAIjLAIipAIiHAIhlAI' +
  'hDAIgQAIf+AHfcAHe6AHeYAHd2AHdUAHcyAHcfAGbtAGbLAGapAGaHAGZlAGZDAGYhAGYPAFXtAFW6AFWYAFV2AFVUAFUyAF' +
  'UQAFT+AETcAES6AESYAER2AERUAEQyAEQPADPtADPLADOpADOHADNlADNDADMhADMPACLtACLLACKpACKHACJlACJDACIhAC' +
  'IPABHtABHLABGpABGHABFlABFDABEhABEPAADtAADLAACpAACHAABlAABDAAAhAA/q//9i//7q/+5i/+3q/91i/9zr/8xz/8' +
  'v7/7tz/7r7/6p0/6oM/5mE/5kM/4iV/4gd/3eW/3cu/2am/2Y//1W3/1VA/1TI/0RR/0PZ/zNi/zLr/yJz/yIM/xGF/xEd/w' +
  'Cm/wAv/v+37v9A7v7Z7u5S7u3r7t1z7t0M7syV7swu7run7rsw7rrJ7qpS7qnr7pl07pkN7oiW7ogv7ne47ndR7nbq7mZz7m' +
  'YN7lWW7lUv7kTI7kRR7kPr7jN07jMd7iKm7iIw7iHJ7hFi7hD87gCV7gAv7f+43f9R3f7r3e6E3e4e3d233d1B3dzq3cx03c' +
  'we3bun3btB3brq3ap03aoe3Zm33ZlB3Zjr3YiE3Yge3Xe43XdS3Xb73WaF3WYv3VXJ3VVj3VUN3USW3UQw3UPa3TN03TMe3S' +
  'K43SJS3SH83RGW3REw3RDa3QB03QAe3P+4zP9SzP78zO6WzO4wzO3bzN2FzN0vzMzJzMxjzMwNzLuozLtSzLr8zKqWzKoxzK' +
  'nrzJmFzJkvzIjazIh0zIgezHfJzHdjzHcOzGa4zGZSzGYNzFWnzFVCzFT8zESXzERBzEPszDOWzDMxzDLrzCKGzCIwzCHrzB' +
  'GFzBEwzBDbzACFzAAwzA/bu/+Fu/8wu/7bu+6Fu+4wu+3bu92Fu90wu9zru8yGu8wwu8vru7uWu7sxu7rsu6qXu6pBu6n8u5' +
  'mnu5lSu5j9u4iou4hTu4gOu3e5u3dju3ceu2bJu2Z0u2Yvu1Xau1WFu1Uwu1Tru0SWu0RBu0P9uzOouzNTuzMOuyK5uyJkuy' +
  'IvuxHauxGFuxExuxDsuwCXuwBSuwANuv+5qv9kqv8fqu7aqu6Fqu4xqu3sqt2nqt1Tqt0Oqsy5qsx0qswgqsvbqruWqrtCqr' +
  'r9qqq4qqpkqqovqpnbqpmGqplBqpj9qoi4qohkqogvqnfbqneGqndCqnb9qma5qmZkqmYgqmXbqlWXqlVSqlUOqkTJqkR1qk' +
  'QxqkPsqjOoqjNjqjMfqiLbqiKGqiJCqiINqhG5qhF1qhEwqhDsqgCoqgBkqgAfqf/bmf+Xmf9Smf8Ome7Kme6Gme5Bme39md' +
  '25md11md0xmdzsmcyomcxkmcwgmcvsmbunmbtTmbsfmarbmaqXmapTmaofmZnbmZmXmZlCmZkOmYjKmYiGmYhCmYgOmXfKmX' +
  'eGmXdCmXcOmWbKmWaGmWZCmWYOmVXKmVWGmVVCmVUOmUTKmUSGmURCmUQOmTPKmTOHmTNTmTMfmSLbmSKXmSJTmSIfmRHbmR' +
  'GXmRFkmREgmRDsmQComQBkmQAgmQ/9iP+5iP91iP8xiP79iO7KiO6GiO5CiO4OiN3LiN2XiN1TiN0fiMzsiMyoiMxkiMwhiM' +
  'v9iLu5iLt1iLtCiLsOiKrKiKqXiKpTiKofiJnsiJmoiJlliJkxiJj9iIjKiIiGiIhDiIgfiHfbiHeoiHdkiHchiHb9iGa6iG' +
  'aGiGZCiGYfiFXbiFWoiFVkiFUxiFT9iETKiESGiERTiEQfiDPsiDOoiDN1iDMxiDMOiCLLiCKXiCJUiCIgiCH9iBG5iBGGiB' +
  'FDiBEfiADciACoiAB1iAAyiAAOh//bd/+Xd/9kd/8hd/79d+7Kd+6Hd+5Td+4gd+3td925d92Gd91Dd90Qd9zsd8y5d8x2d8' +
  'xCd8wfd7vsd7upd7t1d7tCd7sPd6rcd6qod6p1d6pCd6oPd5nbd5mod5l1d5kyd5kPd4jbd4iod4h1d4hCd4gPd3fcd3eod3' +
  'd1d3dCd3cfd2bcd2apd2Z2d2ZCd2Yfd1Xsd1W5d1WGd1VDd1UQd1Ttd0S6d0SHd0RUd0Qgd0P9dzPKdzOXdzNkdzMxdzMOdy' +
  'LbdyKodyJ1dyIydyIPdxHcdxGpdxF2dxFDdxEQdxDtdwC6dwCHdwBUdwAxdwAOdv/bZv+oZv91Zv9CZv8fZu7sZu65Zu6GZu' +
  '5UZu4hZu3+Zt3LZt2YZt1lZt0yZt0fZszsZsy5ZsyGZsxUZswhZsv+ZrvLZruoZrt1ZrtCZrsQZrrtZqq6ZqqHZqpkZqoxZq' +
  'n8ZpmnZplBZpjsZoiWZogwZofrZneFZncwZnbaZmZ1ZmYvZlXaZlV0ZlUvZkTKZkR0ZkQfZjPJZjN0ZjMfZiLJZiJ0ZiIfZh' +
  'HJZhF0ZhEvZgDKZgB1ZgAvZf/aVf+FVf8gVf7bVe6GVe4wVe3rVd2WVd1BVdz8VcynVcxCVcv9VbuoVbtTVbsOVaq5Vap0Va' +
  'ovVZnaVZmFVZkwVZjrVYiXVYhCVYf9VXeoVXdjVXceVWbKVWZ1VWYgVWXrVVWXVVVCVVT9VUS4VURkVUQfVTPaVTOGVTMxVT' +
  'L8VSKoVSJTVSIeVRHKVRGFVRExVRDsVQCoVQBTVQAfVP/KRP+GRP8xRP79RO6oRO5kRO4fRN3bRN2WRN1CRN0ORMy5RMx1RM' +
  'wwRMvsRLuoRLtjRLsfRKrbRKqWRKpCRKoORJnKRJl1RJkxRJj9RIi5RIhkRIggRIfsRHeoRHdkRHcfRGbbRGaXRGZTRGYfRF' +
  'XbRFWXRFVSRFUORETKRESGRERCREQORDPKRDOGRDNCRDMORCLKRCKGRCJCRCIORBHKRBGGRBFCRBEORADKRACGRABCRAAOQ/' +
  '/bM/+XM/9TM/8fM+7bM+6XM+5TM+4QM+3sM92oM91kM90gM9zsM8y5M8x1M8wxM8v9M7vKM7uGM7tCM7sOM6rbM6qXM6pTM6' +
  'oQM6nsM5moM5llM5kxM5j9M4i6M4iGM4hCM4gfM3fbM3eYM3dkM3cgM3b9M2a5M2Z2M2ZCM2YOM1XbM1WXM1VkM1UgM1T9M0' +
  'S5M0SGM0RCM0QfMzPbMzOoMzNkMzMxMzL+MyLKMyKHMyJTMyIgMyHsMxG5MxF2MxFCMxEfMwDbMwCoMwBlMwAxMwAOMv/LIv' +
  '+XIv9kIv8hIv79Iu7KIu6HIu5TIu4gIu39It26It2GIt1TIt0QItztIsy5IsyGIsxTIswQIsvsIru5IruGIrtDIrsQIrrsIq' +
  'q5IqqGIqpTIqoQIqntIpm6IpmGIplTIpkgIpj9Ioi6IoiHIohUIoghIof+InfKIneXIndkIncxIncOImbbImaoImZ1ImYyIm' +
  'YPIlXcIlWpIlV2IlVDIlUQIlTtIkS6IkSHIkRUIkQhIkP+IjPbIjOoIjN1IjNCIjMfIiLsIiK5IiKGIiJUIiIhIiH+IhHLIh' +
  'GYIhFlIhFCIhEfIgDsIgC6IgCHIgBUIgAhIgAOIf/bEf+oEf92Ef9DEf8QEf79Ee7KEe6YEe5lEe4yEe4fEd3sEd26Ed2HEd' +
  '1UEd0xEd0PEczcEcypEcyGEcxUEcwhEcv+EbvbEbupEbt2EbtTEbsgEbr+EarLEaqoEap2EapDEaogEan+EZnLEZmoEZl2EZ' +
  'lDEZkgEZj+EYjLEYioEYh2EYhTEYghEYf+EXfbEXepEXd2EXdUEXchEXcOEWbcEWa5EWaHEWZUEWYyEWYPEVXsEVW6EVWXEV' +
  'VlEVUyEVUQEVTtEUTLEUSYEUR2EURDEUQhEUP+ETPcETOpETOHETNUETMyETMPESLtESK6ESKYESJlESJDESIgESH+ERHbER' +
  'GpERGHERFUEREyEREPEQDtEQDKEQCYEQB2EQBDEQAhEQAOEP/cAP+6AP+HAP9lAP9CAP8QAP7+AO7bAO6pAO6HAO5UAO4yAO' +
  '4QAO3tAN3LAN2pAN12AN1UAN0yAN0PAMztAMzLAMyYAMx2AMxUAMwxAMwPALvtALvLALuYALt2ALtUALsxALsPAKrtAKrLAK' +
  'qYAKp2AKpUAKoyAKoPAJntAJnLAJmpAJmGAJlUAJkyAJkQAJj+AIjLAIipAIiHAIhlAIhCAIgQAIf+AHfcAHe6AHeYAHdlAH' +
  'dDAHchAHcPAGbtAGbLAGaYAGZ2AGZUAGYyAGYQAGX+AFXbAFWpAFWHAFVlAFVDAFUhAFUPAETtAETKAESYAER2AERUAEQyAE' +
  'QQAEP+ADPcADO6ADOYADN2ADNDADMhADMPACLtACLLACKpACKHACJlACJDACIhACIPABHtABHLABGpABGHABFlABFDABEhAB' +
  'EPAADtAADLAACpAACHAABlAABDAAAhAA';

const TABLE = new Uint16Array(4096);
{
  const b = Buffer.from(PACKED, 'base64');
  for (let i = 0; i < 4096; i += 2) {
    const o = (i / 2) * 3;
    TABLE[i] = b[o]! | ((b[o + 1]! & 0xf) << 8);
    TABLE[i + 1] = (b[o + 1]! >> 4) | (b[o + 2]! << 4);
  }
}

export function rcp32(x: number): number {
  const sign = x & 0x80000000;
  const e = (x >>> 23) & 0xff;
  const f = x & 0x7fffff;
  if (e === 0xff) return f !== 0 ? (x | 0x400000) >>> 0 : sign >>> 0; // NaN quieted; 1/inf = 0
  if (e === 0) return (sign | 0x7f800000) >>> 0; // zero or denormal (read as zero)
  const exp = 253 - e;
  if (exp <= 0) return sign >>> 0; // tiny: flushed
  return (sign | (exp << 23) | (TABLE[f >>> 12]! << 11)) >>> 0;
}

export function rsqrt32(x: number): number {
  const sign = x & 0x80000000;
  const e = (x >>> 23) & 0xff;
  const f = x & 0x7fffff;
  if (e === 0xff) {
    if (f !== 0) return (x | 0x400000) >>> 0;
    return sign ? 0xffc00000 : 0;
  }
  if (e === 0) return (sign | 0x7f800000) >>> 0;
  if (sign) return 0xffc00000;
  const k = e - 127;
  const odd = k & 1;
  const exp = 126 - (k - odd) / 2;
  return ((exp << 23) | (TABLE[2048 + ((odd << 10) | (f >>> 13))]! << 11)) >>> 0;
}

function approx(fn: (x: number) => number, scalar: boolean) {
  return (d: DecodeInfo): Exec => {
    rejectMmx(d);
    const dst = xmmReg(d, 0) * 4;
    const load = loadSrc(d, 1, scalar ? 4 : 16);
    const n = scalar ? 1 : 4;
    return (s) => {
      load(s);
      for (let i = 0; i < n; i++) s.xmmU32[dst + i] = fn(SU32[i]!);
    };
  };
}
define(Mnemonic.Rcpps, approx(rcp32, false));
define(Mnemonic.Rcpss, approx(rcp32, true));
define(Mnemonic.Rsqrtps, approx(rsqrt32, false));
define(Mnemonic.Rsqrtss, approx(rsqrt32, true));
